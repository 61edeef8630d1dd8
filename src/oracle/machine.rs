//! The model machine of a scenario: guest storage with the scenario's DAT tables
//! (built by [`SpaceBuilder`]), data and storage keys, and vCPU 0
//! (scenario-format.md `[vm]`, `[[space]]`, `[cpu]`).

use crate::addr::AbsoluteAddress;
use crate::dat::builder::{LeafFlags, SpaceBuilder};
use crate::dat::{DesignationType, FrameSize, TableLevel};
use crate::keys::StorageKey;
use crate::scenario::model::{
    CpuSpec, CrValue, DesignationType as Dt, EntryChange, FrameSelection, KeySetting, Level,
    PageSize, Scenario, SetStep,
};
use crate::vcpu::{Psw, Vcpu};
use crate::vm::{Facilities, Vm};
use std::collections::BTreeMap;

/// The machine a scenario describes, before its steps run.
#[derive(Debug)]
pub struct Machine {
    /// Storage, keys, facilities.
    pub vm: Vm,
    /// vCPU 0.
    pub vcpu: Vcpu,
    /// ASCE of each space, by name.
    pub asces: BTreeMap<String, u64>,
    /// Table areas of the spaces, `(start, end)`.
    pub tables: Vec<(u64, u64)>,
}

fn dt(d: Dt) -> DesignationType {
    match d {
        Dt::RegionFirst => DesignationType::RegionFirst,
        Dt::RegionSecond => DesignationType::RegionSecond,
        Dt::RegionThird => DesignationType::RegionThird,
        Dt::Segment => DesignationType::Segment,
    }
}

/// The table level of a scenario level.
pub fn level(l: Level) -> TableLevel {
    match l {
        Level::RegionFirst => TableLevel::RegionFirst,
        Level::RegionSecond => TableLevel::RegionSecond,
        Level::RegionThird => TableLevel::RegionThird,
        Level::Segment => TableLevel::Segment,
        Level::Page => TableLevel::Page,
    }
}

fn frame_size(p: PageSize) -> FrameSize {
    match p {
        PageSize::K4 => FrameSize::Size4K,
        PageSize::M1 => FrameSize::Size1M,
        PageSize::G2 => FrameSize::Size2G,
    }
}

/// Build the machine: memslots and facilities, every space's tables (mappings, then
/// edits), keys put in use and set, then the initial data.
pub fn build(sc: &Scenario) -> Result<Machine, String> {
    let slots: Vec<(u64, u64)> = sc.vm.memslots.iter().map(|m| (m.start, m.size)).collect();
    let mut vm = Vm::new(&slots, Facilities::from_numbers(&sc.vm.facilities))
        .map_err(|e| format!("memory: {e}"))?;
    vm.set_protected(sc.vm.protected);
    let mut asces = BTreeMap::new();
    let mut tables = Vec::new();
    for s in &sc.spaces {
        let flags = s.asce_low_bits() & !0xF;
        let mut b = SpaceBuilder::new(vm.storage(), dt(s.designation), s.tables, s.tl, flags)
            .map_err(|e| format!("space {}: {e}", s.name))?;
        for m in &s.maps {
            let leaf = LeafFlags {
                protect: m.protect,
                iep: m.iep,
            };
            b.map(m.virt, m.abs, m.size, frame_size(m.page), leaf)
                .map_err(|e| format!("space {}: {e}", s.name))?;
        }
        for e in &s.edits {
            let r = match e.change {
                EntryChange::SetClear { set, clear } => b.edit(e.virt, level(e.level), set, clear),
                EntryChange::Value(v) => b.replace(e.virt, level(e.level), v),
            };
            r.map_err(|err| format!("space {}: {err}", s.name))?;
        }
        asces.insert(s.name.clone(), b.asce().0);
        tables.push((s.tables, b.end()));
    }
    if sc.vm.storage_keys {
        vm.enable_keys();
    }
    for k in &sc.vm.keys {
        set_keys(&vm, k);
    }
    for d in &sc.vm.data {
        vm.storage()
            .write(AbsoluteAddress(d.at), &d.bytes)
            .map_err(|_| format!("data at {:#x} is outside memory", d.at))?;
    }
    let mut vcpu = Vcpu::new();
    apply_cpu(&mut vcpu, &sc.cpu, &asces);
    vcpu.protected = sc.cpu_protected();
    Ok(Machine {
        vm,
        vcpu,
        asces,
        tables,
    })
}

/// The frames a key setting addresses.
pub fn frames(sel: &FrameSelection) -> Vec<u64> {
    match *sel {
        FrameSelection::At(a) => vec![a & !0xFFF],
        FrameSelection::Range { start, end } => {
            let mut v = Vec::new();
            let mut f = start & !0xFFF;
            while f < end {
                v.push(f);
                match f.checked_add(0x1000) {
                    Some(n) => f = n,
                    None => break,
                }
            }
            v
        }
    }
}

/// Set the keys of a key setting's frames (frames outside memory are skipped, as the
/// scenario validated the setting).
pub fn set_keys(vm: &Vm, k: &KeySetting) {
    for f in frames(&k.frames) {
        let _ = vm.set_storage_key(AbsoluteAddress(f), StorageKey(k.byte & 0xFE));
    }
}

fn cr_value(v: &CrValue, asces: &BTreeMap<String, u64>) -> u64 {
    match v {
        CrValue::Raw(x) => *x,
        CrValue::Space(name) => asces.get(name).copied().unwrap_or(0),
    }
}

fn apply_cpu(vcpu: &mut Vcpu, cpu: &CpuSpec, asces: &BTreeMap<String, u64>) {
    vcpu.psw = Psw {
        mask: cpu.psw_mask,
        addr: 0,
    };
    for (i, v) in cpu.cr.iter().enumerate() {
        vcpu.cr[i] = cr_value(v, asces);
    }
    vcpu.ar = cpu.ar;
    vcpu.prefix = cpu.prefix;
    vcpu.sida = cpu.sida.clone();
}

/// Apply a `set` step: only the registers named change.
pub fn apply_set(vcpu: &mut Vcpu, s: &SetStep, asces: &BTreeMap<String, u64>) {
    if let Some(m) = s.psw_mask {
        vcpu.psw.mask = m;
    }
    for (i, v) in s.cr.iter().enumerate() {
        if let Some(v) = v {
            vcpu.cr[i] = cr_value(v, asces);
        }
    }
    for (i, v) in s.ar.iter().enumerate() {
        if let Some(v) = v {
            vcpu.ar[i] = *v;
        }
    }
    if let Some(p) = s.prefix {
        vcpu.prefix = p;
    }
}
