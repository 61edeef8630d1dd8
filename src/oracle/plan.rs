//! From a scenario to what the guest runs: the model runs the scenario's steps, and
//! every logical read or write memop of 1, 2, 4 or 8 bytes becomes one load or store
//! instruction of the guest, with the same machine state.
//!
//! The plan holds, in step order, the guest's ops (initial memory and keys, direct
//! writes and key changes of the steps, the accesses) and for every access the model's
//! outcome, its "what if" outcomes ([`Variants`]) and the reasons a backend cannot run
//! it.
//!
//! The guest is linked for a base address where the scenario uses no memory
//! ([`Plan::base`]). Its own instructions must be reachable with DAT on: the stub page
//! at virtual = real base is mapped into every address space the accesses fetch
//! instructions from (the primary space, or home in home mode). Where a space leaves
//! that address unmapped, the driver adds the missing tables in free memory, in the
//! model's storage as well, before the steps run, so both sides see the same tables.
#![forbid(unsafe_code)]

use super::blob::{AccessRegs, DEFAULT_BASE, GUEST_SIZE, LOWCORE_END, Op, encoded_size};
use super::emulator::Backend;
use super::machine::{self, Machine};
use super::probe::{Outcome, Probe, Rules, probe};
use crate::addr::AbsoluteAddress;
use crate::dat::art::{ArtTrace, ale, ar_translation};
use crate::dat::{PageTableEntry, RegionTableEntry, SegmentTableEntry, TableLevel};
use crate::exception::AccessMode;
use crate::memop::{self, MemOp};
use crate::scenario::model::{
    MemOpKind, MemopStep, Profile, Scenario, StepKind, UserBuf, memop_flags,
};
use crate::vcpu::{Psw, Vcpu};
use std::collections::{BTreeMap, BTreeSet};

/// What-if outcomes of one access, computed before it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variants {
    /// The model's own rules, via [`probe`] (must equal the memop model).
    pub kernel: Probe,
    /// Without key-controlled protection.
    pub no_keys: Probe,
    /// Without EDAT-1 and EDAT-2.
    pub no_edat: Probe,
    /// Without EDAT and without key-controlled protection.
    pub no_edat_no_keys: Probe,
    /// Without EDAT-2.
    pub no_edat2: Probe,
    /// LAP after a successful translation.
    pub lap_late: Probe,
    /// As QEMU 7.2 TCG: no keys, no EDAT, region P bits always honoured.
    pub qemu: Probe,
    /// For an access that crosses a page boundary: each of its two fragments accessed
    /// alone, with the kernel's rules.
    pub fragments: Option<[Probe; 2]>,
}

impl Variants {
    /// The whole-access probes, every rule set (the fragments aside).
    pub fn probes(&self) -> [&Probe; 7] {
        [
            &self.kernel,
            &self.no_keys,
            &self.no_edat,
            &self.no_edat_no_keys,
            &self.no_edat2,
            &self.lap_late,
            &self.qemu,
        ]
    }
}

/// One compared access.
#[derive(Clone, Debug)]
pub struct Access {
    /// Index among the plan's accesses.
    pub idx: usize,
    /// Scenario step number (from 1).
    pub step: usize,
    /// Store (logical-write) or fetch (logical-read).
    pub store: bool,
    /// Operand size.
    pub size: u8,
    /// Logical address.
    pub gaddr: u64,
    /// The memop's `ar`.
    pub ar: u8,
    /// The access key (the memop key with SKEY_PROTECTION, else 0).
    pub key: u8,
    /// The vCPU's PSW mask.
    pub psw: u64,
    /// Control registers.
    pub regs: AccessRegs,
    /// ALET in AR `ar`.
    pub alet: u32,
    /// In access-register mode, the ASCE that access-register translation gives for
    /// `ar` with the model's rules (§5.3), if it gives one; `None` outside AR mode.
    pub ar_asce: Option<u64>,
    /// In access-register mode, whether the ALE that translation read is fetch-only
    /// (§5.3 step 16).
    pub ar_fetch_only: bool,
    /// Value stored (right-aligned).
    pub value: u64,
    /// The vCPU's effective prefix; the guest sets it around the access, and its
    /// lowcore then lives in the prefix area.
    pub prefix: u64,
    /// The memop model's outcome.
    pub model: Outcome,
    /// What-if outcomes.
    pub variants: Variants,
    /// Per backend ([`Backend::index`]): why the access is not run there.
    pub skip: [Option<String>; 2],
}

impl Access {
    /// The PSW mask the guest loads: DAT, AS and EA/BA of the vCPU, the access key.
    pub fn guest_psw(&self) -> u64 {
        (self.psw & (Psw::DAT | Psw::AS_MASK | Psw::EA | Psw::BA))
            | (u64::from(self.key & 0xf) << Psw::KEY_SHIFT)
    }

    /// Whether the access is in access-register mode (DAT on, PSW AS 01).
    pub fn ar_mode(&self) -> bool {
        self.psw & Psw::DAT != 0 && (self.psw & Psw::AS_MASK) >> Psw::AS_SHIFT == 1
    }

    /// One line describing the access.
    pub fn describe(&self) -> String {
        let dat = self.psw & Psw::DAT != 0;
        let space = match (self.psw & Psw::AS_MASK) >> Psw::AS_SHIFT {
            0 => "P",
            1 => "AR",
            2 => "S",
            _ => "H",
        };
        let amode = match (self.psw & Psw::EA != 0, self.psw & Psw::BA != 0) {
            (true, true) => 64,
            (false, true) => 31,
            _ => 24,
        };
        format!(
            "{} {} @{:#x} key {} ar {} {}{} a{}",
            if self.store { "store" } else { "fetch" },
            self.size,
            self.gaddr,
            self.key,
            self.ar,
            if dat { "dat " } else { "real" },
            if dat { space } else { "" },
            amode
        )
    }

    /// A signature of the access itself (not of any outcome), used to check that a
    /// recording belongs to the plan being replayed.
    pub fn signature(&self) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325;
        for v in [
            self.store as u64,
            u64::from(self.size),
            self.gaddr,
            u64::from(self.ar),
            u64::from(self.key),
            self.guest_psw(),
            self.regs.cr0,
            self.regs.cr1,
            self.regs.cr7,
            self.regs.cr13,
            self.value,
            self.prefix,
        ] {
            h = super::guest::fnv1a(&v.to_be_bytes(), h);
        }
        h
    }
}

/// One guest op and the access it carries, if any.
#[derive(Clone, Debug)]
pub struct PlannedOp {
    /// The op.
    pub op: Op,
    /// Index into [`Plan::accesses`] for access ops.
    pub access: Option<usize>,
}

/// Everything needed to run a scenario on the emulators and compare.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Scenario name.
    pub name: String,
    /// Model memory in bytes (one memslot at 0).
    pub memory: u64,
    /// Guest ops in order.
    pub ops: Vec<PlannedOp>,
    /// Compared accesses.
    pub accesses: Vec<Access>,
    /// The guest's base address (stub page; code above).
    pub base: u64,
    /// Where the blob goes.
    pub blob_addr: u64,
    /// Blob plus the stub's tables: memory the harness owns besides the reserved
    /// window.
    pub harness: Vec<(u64, u64)>,
    /// Remarks for the report (steps not compared, stub tables added...).
    pub notes: Vec<String>,
}

impl Plan {
    /// The emulator main storage in MiB for a backend: the model's memory rounded up,
    /// at least what the blob needs and what the emulator accepts.
    pub fn memory_mib(&self, b: Backend) -> u64 {
        let blob_end = self.blob_addr + encoded_size(self.ops.iter().map(|o| &o.op)) as u64;
        let need = self.memory.max(blob_end);
        let mib = need.div_ceil(1 << 20).max(b.min_memory_mib());
        match b {
            // QEMU loads its s390-ccw BIOS (56 KiB) 2 MiB below the end of memory
            // even with -kernel: keep it above a blob that had to go above the
            // scenario's memory.
            Backend::Qemu if need > self.memory => mib + 2,
            Backend::Qemu => qemu_mib(self.memory),
            Backend::Hercules => mib,
        }
    }

    /// The blob for a backend and, per op of it, the access index it carries.
    pub fn blob(&self, b: Backend) -> (Vec<u8>, Vec<Option<usize>>) {
        let ops: Vec<&PlannedOp> = self
            .ops
            .iter()
            .filter(|o| {
                o.access
                    .is_none_or(|i| self.accesses[i].skip[b.index()].is_none())
            })
            .collect();
        let map = ops.iter().map(|o| o.access).collect();
        let blob = super::blob::encode(ops.iter().map(|o| &o.op), b == Backend::Hercules);
        (blob, map)
    }
}

/// QEMU's memory for a scenario of `memory` bytes: whole MiB, and 3 MiB instead of 2
/// (with 2 MiB QEMU 7.2 puts its BIOS at address 0, over the guest: "Some ROM regions
/// are overlapping").
fn qemu_mib(memory: u64) -> u64 {
    match memory.div_ceil(1 << 20).max(1) {
        2 => 3,
        m => m,
    }
}

/// Where QEMU loads its s390-ccw BIOS: from 2 MiB below the end of memory, 272 KiB
/// (its two ELF segments, 0 - 0xdfd8 and 0xeed0 - 0x44000 with the BSS; the image is
/// loaded even with -kernel). The guest must not be linked there (QEMU refuses
/// overlapping ELF segments), and scenario memory there must be cleared.
fn qemu_bios(memory: u64) -> (u64, u64) {
    let start = (qemu_mib(memory) << 20).saturating_sub(2 << 20);
    (start, start + 0x4_4000)
}

/// Free-memory bookkeeping for the harness's own tables and the blob: `hard` ranges
/// hold the scenario's tables and contents; `soft` ranges are what its mappings and
/// addresses point to, used only when nothing else is free (an access that then
/// reaches harness memory is skipped).
struct Allocator {
    hard: Vec<(u64, u64)>,
    soft: Vec<(u64, u64)>,
    limit: u64,
}

impl Allocator {
    fn is_free(ranges: &[(u64, u64)], start: u64, end: u64) -> bool {
        ranges.iter().all(|&(s, e)| end <= s || start >= e)
    }

    /// The lowest free `size` bytes at `align` above the lowcore and below the model's
    /// memory end, avoiding soft ranges if possible, else just above memory.
    fn alloc(&mut self, size: u64, align: u64) -> u64 {
        let mut cands: Vec<u64> = vec![LOWCORE_END];
        cands.extend(self.hard.iter().chain(&self.soft).map(|u| u.1));
        cands.sort_unstable();
        for strict in [true, false] {
            for &c in &cands {
                let a = c.div_ceil(align) * align;
                let fits = a >= LOWCORE_END
                    && a + size <= self.limit
                    && Self::is_free(&self.hard, a, a + size)
                    && (!strict || Self::is_free(&self.soft, a, a + size));
                if fits {
                    self.hard.push((a, a + size));
                    return a;
                }
            }
        }
        let top = self
            .hard
            .iter()
            .map(|u| u.1)
            .max()
            .unwrap_or(0)
            .max(self.limit);
        let a = top.div_ceil(1 << 20) << 20;
        self.hard.push((a, a + size));
        a
    }
}

/// Whether a memop step is one the guest can run as one instruction, else why not.
fn compared(m: &MemopStep) -> Result<bool, String> {
    let store = match m.op.kind() {
        Some(MemOpKind::LogicalRead) => false,
        Some(MemOpKind::LogicalWrite) => true,
        _ => return Err("not a logical read or write".into()),
    };
    if m.ioctl != crate::scenario::model::Ioctl::Vcpu {
        return Err("not a vCPU ioctl".into());
    }
    if m.flags & memop_flags::CHECK_ONLY != 0 {
        return Err("check-only".into());
    }
    if m.flags & !(memop_flags::INJECT_EXCEPTION | memop_flags::SKEY_PROTECTION) != 0 {
        return Err("unknown flags".into());
    }
    if !matches!(m.size, 1 | 2 | 4 | 8) {
        return Err(format!("size {} is not one instruction's operand", m.size));
    }
    if m.buf != UserBuf::Valid || m.sida_offset.is_some() {
        return Err("bad user buffer or SIDA offset".into());
    }
    Ok(store)
}

fn memop_for(m: &MemopStep, profile: Profile) -> MemOp {
    let size = m.size;
    let op = match m.op.kind() {
        Some(MemOpKind::LogicalWrite)
        | Some(MemOpKind::AbsoluteWrite)
        | Some(MemOpKind::SidaWrite) => {
            let data = m.data.clone().unwrap_or_else(|| vec![0; size as usize]);
            match m.op.kind() {
                Some(MemOpKind::LogicalWrite) => MemOp::logical_write(m.gaddr, data),
                Some(MemOpKind::AbsoluteWrite) => MemOp::absolute_write(m.gaddr, data),
                _ => MemOp::sida_write(0, data),
            }
        }
        Some(MemOpKind::AbsoluteCmpxchg) => MemOp::absolute_cmpxchg(
            m.gaddr,
            m.data.clone().unwrap_or_else(|| vec![0; size as usize]),
            m.old.clone().unwrap_or_else(|| vec![0; size as usize]),
        ),
        _ => MemOp::raw(m.op.number(), m.gaddr, size),
    };
    let mut op = op.op(m.op.number()).size(size).flags(m.flags);
    op = match m.sida_offset {
        Some(off) => op.sida_offset(off),
        None => op.ar(m.ar).key_byte(m.key),
    };
    if m.buf == UserBuf::Null {
        op = op.null_buf();
    }
    if m.old_addr == UserBuf::Null {
        op = op.null_old();
    }
    op.profile(match profile {
        Profile::Linux70 => memop::Profile::Linux70,
        Profile::Linux63 => memop::Profile::Linux63,
    })
}

/// Nonzero 4 KiB frames of memory from `from` to `to`.
fn nonzero_frames(m: &Machine, from: u64, to: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    let mut f = from;
    while f < to {
        if m.vm.storage().read(AbsoluteAddress(f), &mut buf).is_ok() && buf.iter().any(|&b| b != 0)
        {
            out.push(f);
        }
        f += 4096;
    }
    out
}

/// The instruction-fetch ASCE of a vCPU state with DAT on.
fn ifetch_asce(v: &Vcpu) -> u64 {
    if v.psw.as_bits() == 3 {
        v.cr[13]
    } else {
        v.cr[1]
    }
}

/// Whether the stub page can be mapped at virtual `v` in the space of `asce`: the walk
/// for `v` reaches an invalid entry (tables are added there) or a page-table entry
/// that maps `v` to itself.
fn stub_path_ok(m: &Machine, asce: u64, v: u64) -> bool {
    let asce = crate::dat::Asce(asce);
    if asce.real_space() {
        return true;
    }
    let s = m.vm.storage();
    let mut level = asce.dt().level();
    let mut table = asce.origin();
    loop {
        let at = table.wrapping_add(level.index(v) * 8);
        let Ok(e) = s.read_u64(AbsoluteAddress(at)) else {
            return false;
        };
        match level {
            TableLevel::Page => {
                let pte = PageTableEntry(e);
                return pte.invalid() || (e & !0xfff == v && e & PageTableEntry::Z == 0);
            }
            TableLevel::Segment => {
                let ste = SegmentTableEntry(e);
                if ste.invalid() {
                    return true;
                }
                let cs_private = e & SegmentTableEntry::CS != 0 && asce.private();
                if ste.fc() || ste.tt() != 0 || cs_private {
                    return false;
                }
                table = e & SegmentTableEntry::PTO;
            }
            _ => {
                let rte = RegionTableEntry(e);
                if rte.invalid() {
                    return true;
                }
                if Some(rte.tt()) != level.table_type() || rte.tf() > 0 || rte.fc() {
                    return false;
                }
                table = rte.origin();
            }
        }
        level = level.lower().unwrap_or(TableLevel::Page);
    }
}

/// Map the stub page (virtual `base` → real `base`) in the space of
/// `asce`, creating the missing tables with `alloc`. Fails when the space maps the
/// address differently or its tables cannot lead there.
fn install_stub(
    base: u64,
    m: &Machine,
    asce: u64,
    alloc: &mut Allocator,
    made: &mut Vec<(u64, u64)>,
) -> Result<(), String> {
    let asce = crate::dat::Asce(asce);
    if asce.real_space() {
        return Ok(());
    }
    let s = m.vm.storage();
    let v = base;
    let mut level = asce.dt().level();
    let mut table = asce.origin();
    loop {
        let at = table.wrapping_add(level.index(v) * 8);
        let e = s
            .read_u64(AbsoluteAddress(at))
            .map_err(|_| format!("the {} entry at {at:#x} is outside memory", level.name()))?;
        let write = |val: u64| {
            s.write_u64(AbsoluteAddress(at), val)
                .map_err(|_| format!("cannot write {at:#x}"))
        };
        let new_table = |alloc: &mut Allocator, made: &mut Vec<(u64, u64)>, lower: TableLevel| {
            // Region and segment tables of one quarter (TL 0 in the entry above):
            // the stub's indexes are below 512 at every level (base < 16 MiB).
            let (size, empty) = match lower {
                TableLevel::Page => (2048u64, PageTableEntry::EMPTY.0),
                TableLevel::Segment => (4096, SegmentTableEntry::EMPTY.0),
                l => (4096, RegionTableEntry::empty(l.table_type().unwrap_or(0)).0),
            };
            let t = alloc.alloc(size, size.min(4096));
            let bytes: Vec<u8> = (0..size / 8).flat_map(|_| empty.to_be_bytes()).collect();
            s.write(AbsoluteAddress(t), &bytes)
                .map_err(|_| format!("no room for a {} table at {t:#x}", lower.name()))?;
            made.push((t, t + size));
            Ok::<u64, String>(t)
        };
        match level {
            TableLevel::Page => {
                let pte = PageTableEntry(e);
                if pte.invalid() {
                    return write(base);
                }
                if e & !0xfff == base && e & PageTableEntry::Z == 0 {
                    return Ok(());
                }
                return Err(format!("virtual {v:#x} is mapped to {:#x}", e & !0xfff));
            }
            TableLevel::Segment => {
                let ste = SegmentTableEntry(e);
                if ste.invalid() {
                    let t = new_table(alloc, made, TableLevel::Page)?;
                    write(t)?;
                    table = t;
                } else if ste.fc()
                    || ste.tt() != 0
                    || (e & SegmentTableEntry::CS != 0 && asce.private())
                {
                    return Err(format!(
                        "the segment entry at {at:#x} is not a page-table entry"
                    ));
                } else {
                    table = e & SegmentTableEntry::PTO;
                }
            }
            _ => {
                let rte = RegionTableEntry(e);
                let lower = level.lower().unwrap_or(TableLevel::Segment);
                if rte.invalid() {
                    let t = new_table(alloc, made, lower)?;
                    write(t | (level.table_type().unwrap_or(0) << RegionTableEntry::TT_SHIFT))?;
                    table = t;
                } else if Some(rte.tt()) != level.table_type() || rte.tf() > 0 || rte.fc() {
                    return Err(format!(
                        "the {} entry at {at:#x} does not lead to virtual {v:#x}",
                        level.name()
                    ));
                } else {
                    table = rte.origin();
                }
            }
        }
        level = level.lower().unwrap_or(TableLevel::Page);
    }
}

fn be_value(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b))
}

/// Build the plan of a scenario. An error means nothing of it can run.
pub fn build(sc: &Scenario) -> Result<Plan, String> {
    if sc.vm.memslots.len() != 1 || sc.vm.memslots[0].start != 0 {
        return Err("the oracle needs memory as one memslot at absolute 0".into());
    }
    let memory = sc.vm.memslots[0].size;
    if memory > 2 << 30 {
        return Err("the oracle runs at most 2 GiB of guest memory".into());
    }
    if sc.vm.protected || sc.cpu_protected() {
        return Err("protected guests cannot be emulated".into());
    }
    let mut m = machine::build(sc)?;
    let mut notes = Vec::new();

    // Memory the scenario uses, so that the harness keeps out of it.
    let mut used: Vec<(u64, u64)> = vec![(0, LOWCORE_END)];
    used.extend(
        nonzero_frames(&m, LOWCORE_END, memory)
            .into_iter()
            .map(|f| (f, f + 4096)),
    );
    used.extend(m.tables.iter().copied());
    let mut soft: Vec<(u64, u64)> = Vec::new();
    for s in &sc.spaces {
        for map in &s.maps {
            soft.push((map.abs, map.abs.saturating_add(map.size)));
        }
    }
    let mut ifetch = BTreeSet::new();
    let mut v = m.vcpu.clone();
    for st in &sc.steps {
        match &st.kind {
            StepKind::Set(s) => machine::apply_set(&mut v, s, &m.asces),
            StepKind::Memop(mo) => {
                let p = v.effective_prefix();
                if p != 0 {
                    used.push((p, p + 0x2000));
                }
                for a in [mo.gaddr, mo.gaddr & 0x7fff_ffff, mo.gaddr & 0xff_ffff] {
                    let last = a.saturating_add(u64::from(mo.size.max(1)) - 1);
                    soft.push((a & !0xfff, (last & !0xfff).saturating_add(0x1000)));
                }
                if compared(mo).is_ok() && v.psw.dat() {
                    ifetch.insert(ifetch_asce(&v));
                }
            }
            StepKind::Write(d) => used.push((d.at, d.at.saturating_add(d.bytes.len() as u64))),
            _ => {}
        }
    }
    let clip = |v: Vec<(u64, u64)>| -> Vec<(u64, u64)> {
        v.into_iter()
            .filter(|u| u.0 < memory)
            .map(|(s, e)| (s, e.min(memory)))
            .collect()
    };
    used.push(qemu_bios(memory));
    let used = clip(used);
    let soft = clip(soft);
    // The guest's base: the lowest place below 16 MiB (reachable in 24-bit mode) where
    // its 56 KiB touch nothing the scenario uses. Not 0xf000: QEMU takes an ELF
    // entered at 0x10000 for a Linux kernel and writes its command line into it.
    let free = |a: u64, strict: bool| {
        let e = a + GUEST_SIZE;
        e <= memory
            && Allocator::is_free(&used, a, e)
            && (!strict || Allocator::is_free(&soft, a, e))
    };
    let cands = || std::iter::once(DEFAULT_BASE).chain((1..256).map(|i| i << 16));
    let stub_ok = |a: u64| ifetch.iter().all(|&asce| stub_path_ok(&m, asce, a));
    let base = cands()
        .find(|&a| a != 0xf000 && free(a, true) && stub_ok(a))
        .or_else(|| cands().find(|&a| a != 0xf000 && free(a, false) && stub_ok(a)))
        .or_else(|| cands().find(|&a| a != 0xf000 && free(a, false)))
        .unwrap_or(DEFAULT_BASE);
    if base != DEFAULT_BASE {
        notes.push(format!("the guest runs at {base:#x}"));
    }
    let mut used = used;
    used.push((base, base + GUEST_SIZE));
    let mut alloc = Allocator {
        hard: used,
        soft,
        limit: memory,
    };
    let guest_owned = move |a: u64| a < LOWCORE_END || (a >= base && a < base + GUEST_SIZE);
    let mut harness = Vec::new();
    let mut no_stub: BTreeMap<u64, String> = BTreeMap::new();
    for &asce in &ifetch {
        let before = harness.len();
        if let Err(e) = install_stub(base, &m, asce, &mut alloc, &mut harness) {
            no_stub.insert(asce, e);
        } else if harness.len() > before {
            notes.push(format!(
                "mapped the guest's stub page (virtual {base:#x}) in the space of ASCE {asce:#x} with {} new table(s)",
                harness.len() - before
            ));
        }
    }

    // Initial memory and keys: first clear what QEMU's BIOS image occupies.
    let mut ops: Vec<PlannedOp> = Vec::new();
    let (bs, be) = qemu_bios(memory);
    if bs < memory && !guest_owned(bs) {
        ops.push(PlannedOp {
            op: Op::Zero {
                addr: bs,
                len: (be.min(memory) - bs) as u32,
            },
            access: None,
        });
    }
    let frames: Vec<u64> = nonzero_frames(&m, LOWCORE_END, memory)
        .into_iter()
        .filter(|&f| !guest_owned(f))
        .collect();
    let mut i = 0;
    while i < frames.len() {
        let mut j = i + 1;
        while j < frames.len() && frames[j] == frames[j - 1] + 4096 && j - i < 256 {
            j += 1;
        }
        let mut bytes = vec![0u8; (j - i) * 4096];
        let _ = m.vm.storage().read(AbsoluteAddress(frames[i]), &mut bytes);
        ops.push(PlannedOp {
            op: Op::Write {
                addr: frames[i],
                bytes,
            },
            access: None,
        });
        i = j;
    }
    let key_frames = |m: &Machine| -> Vec<(u64, u8)> {
        (0..memory / 4096)
            .filter_map(|n| {
                let k = m.vm.storage_key(AbsoluteAddress(n * 4096)).ok()?;
                (k.0 & 0xf8 != 0).then_some((n * 4096, k.0))
            })
            .collect()
    };
    for (f, k) in key_frames(&m) {
        if guest_owned(f) {
            notes.push(format!(
                "the key of frame {f:#x} (guest-owned) is not set in the emulators"
            ));
            continue;
        }
        ops.push(PlannedOp {
            op: Op::Sske {
                addr: f,
                key: k & 0xfe,
            },
            access: None,
        });
    }

    // The steps.
    let mut accesses: Vec<Access> = Vec::new();
    for (n, st) in sc.steps.iter().enumerate() {
        let step = n + 1;
        match &st.kind {
            StepKind::Memop(mo) => match compared(mo) {
                Ok(store) => {
                    let a = run_access(
                        &mut m,
                        sc,
                        mo,
                        store,
                        step,
                        accesses.len(),
                        &no_stub,
                        &guest_owned,
                        &harness,
                    );
                    ops.push(PlannedOp {
                        op: Op::Access {
                            size: a.size,
                            store,
                            breg: a.ar & 15,
                            psw: a.guest_psw(),
                            addr: a.gaddr,
                            value: a.value,
                            regs: a.regs,
                            alet: a.alet,
                            prefix: a.prefix as u32,
                        },
                        access: Some(a.idx),
                    });
                    accesses.push(a);
                }
                Err(why) => {
                    let r = memop_for(mo, sc.profile);
                    let res = match mo.ioctl {
                        crate::scenario::model::Ioctl::Vm => r.run_vm(&m.vm),
                        crate::scenario::model::Ioctl::Vcpu => r.run_vcpu(&m.vm, &mut m.vcpu),
                    };
                    if res.ret == 0 {
                        mirror_write(&m, mo, &res, &mut ops, &mut notes, step);
                    }
                    notes.push(format!("step {step}: memop not compared ({why})"));
                }
            },
            StepKind::Write(d) => {
                let _ = m.vm.storage().write(AbsoluteAddress(d.at), &d.bytes);
                let end = d.at.saturating_add(d.bytes.len() as u64);
                if (d.at..end)
                    .step_by(4096)
                    .chain([end.saturating_sub(1)])
                    .any(guest_owned)
                {
                    // The guest's own memory: not written there; accesses that depend
                    // on it are skipped ("memory the guest program owns").
                    notes.push(format!(
                        "step {step}: the write at {:#x} is in the guest's own memory; not done in the emulators",
                        d.at
                    ));
                } else {
                    ops.push(PlannedOp {
                        op: Op::Write {
                            addr: d.at,
                            bytes: d.bytes.clone(),
                        },
                        access: None,
                    });
                }
            }
            StepKind::Set(s) => machine::apply_set(&mut m.vcpu, s, &m.asces),
            StepKind::SetKey(k) => {
                if !m.vm.keys_in_use() {
                    for (f, _) in key_frames(&m) {
                        ops.push(PlannedOp {
                            op: Op::Sske { addr: f, key: 0 },
                            access: None,
                        });
                    }
                    m.vm.enable_keys();
                }
                machine::set_keys(&m.vm, k);
                for f in machine::frames(&k.frames) {
                    if f < memory && !guest_owned(f) {
                        ops.push(PlannedOp {
                            op: Op::Sske {
                                addr: f,
                                key: k.byte & 0xfe,
                            },
                            access: None,
                        });
                    }
                }
            }
            StepKind::Keyop(k) => {
                let mut kop = memop::abi::KvmS390Keyop::new(k.op.number(), k.at, k.key);
                let ret = memop::keyop(&m.vm, &mut kop);
                if ret == 0 && k.op == crate::scenario::model::KeyopOp::Sske && !guest_owned(k.at) {
                    ops.push(PlannedOp {
                        op: Op::Sske {
                            addr: k.at & !0xfff,
                            key: k.key & 0xfe,
                        },
                        access: None,
                    });
                }
            }
            // Steps that change no memory content and no key: nothing to mirror.
            _ => {}
        }
    }
    let blob_addr = alloc.alloc(encoded_size(ops.iter().map(|o| &o.op)) as u64, 4096);
    harness.push((
        blob_addr,
        blob_addr + encoded_size(ops.iter().map(|o| &o.op)) as u64,
    ));
    // An access that reaches the blob, found only now, is skipped too.
    let (bs, be) = (blob_addr & !0xfff, harness.last().map_or(0, |h| h.1));
    let in_blob = |t: u64| t >= bs && t < be;
    for a in &mut accesses {
        let hits = a.variants.probes().iter().any(|p| {
            (p.outcome.code == 0
                && (p.target.is_some_and(in_blob) || p.target2.is_some_and(in_blob)))
                || p.table_frames().iter().any(|&f| in_blob(f))
        });
        if hits {
            for s in &mut a.skip {
                s.get_or_insert_with(|| "the access reaches the guest's blob".into());
            }
        }
    }
    Ok(Plan {
        name: sc.name.clone(),
        memory,
        ops,
        accesses,
        base,
        blob_addr,
        harness,
        notes,
    })
}

/// Mirror the memory change of a memop the guest does not run as an access.
fn mirror_write(
    m: &Machine,
    mo: &MemopStep,
    res: &memop::MemOpResult,
    ops: &mut Vec<PlannedOp>,
    notes: &mut Vec<String>,
    step: usize,
) {
    let push = |ops: &mut Vec<PlannedOp>, addr: u64, bytes: Vec<u8>| {
        ops.push(PlannedOp {
            op: Op::Write { addr, bytes },
            access: None,
        })
    };
    match mo.op.kind() {
        Some(MemOpKind::AbsoluteWrite) if mo.flags & memop_flags::CHECK_ONLY == 0 => {
            push(ops, mo.gaddr, res.data.clone());
        }
        Some(MemOpKind::AbsoluteCmpxchg) if res.exchanged == Some(true) => {
            push(ops, mo.gaddr, res.data.clone());
        }
        Some(MemOpKind::LogicalWrite) if mo.flags & memop_flags::CHECK_ONLY == 0 => {
            // Re-read what the write left, page by page, through the same translation.
            let mut off = 0u64;
            let len = u64::from(mo.size);
            while off < len {
                let ga = mo.gaddr.wrapping_add(off);
                let frag = (4096 - (ga & 0xfff)).min(len - off);
                let p = probe(&m.vm, &m.vcpu, ga, mo.ar, 1, false, 0, Rules::KERNEL);
                match p.target {
                    Some(t) => {
                        let mut b = vec![0u8; frag as usize];
                        let _ = m.vm.storage().read(AbsoluteAddress(t), &mut b);
                        push(ops, t, b);
                    }
                    None => notes.push(format!("step {step}: cannot mirror the write at {ga:#x}")),
                }
                off += frag;
            }
        }
        _ => {}
    }
}

#[allow(clippy::too_many_arguments)]
fn run_access(
    m: &mut Machine,
    sc: &Scenario,
    mo: &MemopStep,
    store: bool,
    step: usize,
    idx: usize,
    no_stub: &BTreeMap<u64, String>,
    guest_owned: &dyn Fn(u64) -> bool,
    harness: &[(u64, u64)],
) -> Access {
    let skey = mo.flags & memop_flags::SKEY_PROTECTION != 0;
    let key = if skey { mo.key } else { 0 };
    let ar = mo.ar;
    let size = mo.size as u8;
    let v = &m.vcpu;
    let value = mo.data.as_deref().map_or(0, be_value);
    let p = |rules: Rules| probe(&m.vm, &m.vcpu, mo.gaddr, ar, size, store, key, rules);
    let variants = Variants {
        kernel: p(Rules::KERNEL),
        no_keys: p(Rules {
            keys: false,
            ..Rules::KERNEL
        }),
        no_edat: p(Rules {
            edat1: false,
            edat2: false,
            ..Rules::KERNEL
        }),
        no_edat_no_keys: p(Rules {
            keys: false,
            edat1: false,
            edat2: false,
            ..Rules::KERNEL
        }),
        no_edat2: p(Rules {
            edat2: false,
            ..Rules::KERNEL
        }),
        lap_late: p(Rules {
            lap_first: false,
            ..Rules::KERNEL
        }),
        qemu: p(Rules {
            keys: false,
            edat1: false,
            edat2: false,
            lap_first: true,
            region_p_always: true,
        }),
        fragments: {
            let ga = crate::translate::effective_address(v, mo.gaddr).0;
            let first = 4096 - (ga & 0xfff);
            (first < u64::from(size)).then(|| {
                let second = crate::translate::effective_address(v, ga.wrapping_add(first)).0;
                let rest = u64::from(size) - first;
                let one = |at: u64, len: u64| {
                    probe(&m.vm, v, at, ar, len as u8, store, key, Rules::KERNEL)
                };
                [one(ga, first), one(second, rest)]
            })
        },
    };
    let regs = AccessRegs {
        cr0: v.cr[0],
        cr1: v.cr[1],
        cr2: v.cr[2],
        cr5: v.cr[5],
        cr7: v.cr[7],
        cr8: v.cr[8],
        cr13: v.cr[13],
    };
    let alet = v.ar[usize::from(ar & 15)];
    let psw = v.psw.mask;
    let dat = v.psw.dat();
    let v_as = v.psw.as_bits();
    let ar_mode = dat && v_as == 1;
    let (ar_asce, ar_fetch_only) = if ar_mode {
        let mode = if store {
            AccessMode::Store
        } else {
            AccessMode::Fetch
        };
        let mut trace = ArtTrace::default();
        let asce = ar_translation(m.vm.storage(), v, ar, mode, &mut trace).ok();
        let fetch_only = trace.ale.is_some_and(|(_, w)| w[0] & ale::FETCH_ONLY != 0);
        (asce.map(|a| a.0), fetch_only)
    } else {
        (None, false)
    };
    let prefix = v.effective_prefix();
    let iasce = ifetch_asce(v);

    let res = memop_for(mo, sc.profile).run_vcpu(&m.vm, &mut m.vcpu);
    let model = if res.ret > 0 {
        res.pgm.map(|p| Outcome::from_pgm(&p)).unwrap_or(Outcome {
            code: res.ret as u16,
            teid: None,
            eaid: None,
            data: None,
        })
    } else {
        Outcome::ok((!store && res.ret == 0).then(|| be_value(&res.data)))
    };

    let mut skip: [Option<String>; 2] = [None, None];
    let both = |skip: &mut [Option<String>; 2], why: String| {
        for s in skip.iter_mut() {
            s.get_or_insert_with(|| why.clone());
        }
    };
    if res.ret < 0 {
        both(&mut skip, format!("the model returns errno {}", res.ret));
    }

    if dat && let Some(e) = no_stub.get(&iasce) {
        both(
            &mut skip,
            format!("the guest's stub cannot be mapped in ASCE {iasce:#x}: {e}"),
        );
    }
    // With a prefix, the guest's lowcore during the access is the prefix area.
    let owned = |t: Option<u64>| {
        t.is_some_and(|t| {
            guest_owned(t)
                || (prefix != 0 && t >= prefix && t < prefix + 0x2000)
                || harness.iter().any(|&(s, e)| t >= s && t < e)
        })
    };
    // Only an access that completes touches memory.
    let reach = |p: &Probe| p.outcome.code == 0 && (owned(p.target) || owned(p.target2));
    // Tables or AR-translation structures in memory the guest owns are not there in
    // the emulator.
    let all = variants.probes();
    // (The stub's own tables are the same on both sides; the blob, placed after the
    // steps, is checked in `build`.)
    if all.iter().any(|p| {
        p.table_frames()
            .iter()
            .any(|&f| guest_owned(f) || (prefix != 0 && f >= prefix && f < prefix + 0x2000))
    }) {
        both(
            &mut skip,
            "its DAT tables or AR-translation structures lie in memory the guest program owns"
                .into(),
        );
    }
    let owned_why = "the access reaches memory the guest program owns";
    if reach(&variants.kernel) || reach(&variants.no_keys) || reach(&variants.lap_late) {
        both(&mut skip, owned_why.into());
    }
    let only = |skip: &mut [Option<String>; 2], b: Backend| {
        skip[b.index()].get_or_insert_with(|| format!("{owned_why} (as {} translates)", b.name()));
    };
    if reach(&variants.no_edat) || reach(&variants.no_edat_no_keys) || reach(&variants.qemu) {
        only(&mut skip, Backend::Qemu);
    }
    // Hercules does not apply LAP in a real space (kernel-real-space-not-private): a
    // store the kernel refuses by LAP would overwrite the guest's lowcore there.
    let operand_asce = match v_as {
        0 => Some(regs.cr1),
        2 => Some(regs.cr7),
        3 => Some(regs.cr13),
        _ => None,
    };
    if store
        && dat
        && operand_asce.is_some_and(|a| a & crate::dat::Asce::R != 0)
        && (owned(variants.lap_late.target) || owned(variants.lap_late.target2))
    {
        only(&mut skip, Backend::Hercules);
    }
    if reach(&variants.no_edat2) {
        only(&mut skip, Backend::Hercules);
    }
    if variants.kernel.outcome != model && res.ret >= 0 {
        both(
            &mut skip,
            format!(
                "internal: the probe ({}) disagrees with the memop model ({})",
                variants.kernel.outcome.describe(),
                model.describe()
            ),
        );
    }
    if ar_mode {
        skip[Backend::Qemu.index()]
            .get_or_insert_with(|| "QEMU TCG aborts in access-register mode (qemu-ar-mode)".into());
    }
    Access {
        idx,
        step,
        store,
        size,
        gaddr: mo.gaddr,
        ar,
        key,
        psw,
        regs,
        alet,
        ar_asce,
        ar_fetch_only,
        value,
        prefix,
        model,
        variants,
        skip,
    }
}
