//! The model machine of a scenario: guest storage with the scenario's DAT tables, data
//! and storage keys, and vCPU 0 (scenario-format.md `[vm]`, `[[space]]`, `[cpu]`), as
//! the scenario runner builds them ([`run::Machine`]), with the ASCEs by name and the
//! table areas the oracle keeps out of.
#![forbid(unsafe_code)]

use crate::addr::AbsoluteAddress;
use crate::keys::StorageKey;
use crate::scenario::model::{CrValue, FrameSelection, KeySetting, Scenario, SetStep};
use crate::scenario::run;
use crate::vcpu::Vcpu;
use crate::vm::Vm;
use std::collections::BTreeMap;

/// The table level of a scenario level.
pub use crate::scenario::run::table_level as level;

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

/// Build the machine with the scenario runner ([`run::Machine::build`]): memslots and
/// facilities, every space's tables (mappings, then edits), the initial data, keys put
/// in use and set, then vCPU 0. A scenario the runner rejects is rejected here with the
/// runner's message.
pub fn build(sc: &Scenario) -> Result<Machine, String> {
    let m = run::Machine::build(sc).map_err(|e| e.to_string())?;
    let asces = m
        .spaces
        .iter()
        .map(|s| (s.name.clone(), s.asce.0))
        .collect();
    let tables = m.spaces.iter().map(run::BuiltSpace::area).collect();
    Ok(Machine {
        vm: m.vm,
        vcpu: m.vcpu,
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
