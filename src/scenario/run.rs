//! Running a scenario (scenario-format.md): build the machine a [`Scenario`] describes,
//! run its steps in order and compare each step's results with its `expect` block.
//!
//! * [`Machine::build`] turns the validated model into a [`Vm`] and a [`Vcpu`]: memslots,
//!   facilities and protection; the DAT spaces with the table builder (all mappings in
//!   file order, then all edits); `vm.data`; storage keys; then the vCPU registers, with
//!   `space:NAME` resolved to that space's ASCE. Problems the reader could not see (a
//!   table outside memory, conflicting mappings, overlapping tables, tables under
//!   `vm.data`, an edit whose walk stops early, a `write`/`check` outside memory) are
//!   [`SetupError`]s naming the field, never panics.
//! * [`Machine::run_step`] runs one step and returns its [`StepResult`], with exactly the
//!   result fields of the format's "Results" section. Memops go through the raw ioctl
//!   entry points ([`memop::vm_mem_op`], [`memop::vcpu_mem_op`]) with the struct filled
//!   from the step, so a scenario exercises what the ioctl does, bad inputs included.
//! * [`load`] reads a file and builds its machine; its errors name file, line and column.
//!
//! Section numbers (§) cite kernel-semantics.md.
#![forbid(unsafe_code)]

use std::path::Path;

use super::model::{
    AccessMode, CrValue, DesignationType as ModelDt, EntryChange, Expect, FrameSelection, Ioctl,
    KeySetting, Level, MemOpKind, MemopStep, PageSize, Profile as ModelProfile, Scenario, SetStep,
    Step, StepKind, UserBuf,
};
use super::parse::{self, FieldPath, Format, PathSegment, ScenarioError};
use crate::addr::{AbsoluteAddress, PAGE_SIZE};
use crate::dat::builder::{LeafFlags, SpaceBuilder};
use crate::dat::{Asce, DesignationType, FrameSize, TableLevel};
use crate::exception::{self, AccessError, Errno, PgmInfo};
use crate::keys::{AccessKey, StorageKey};
use crate::memop::abi::{KVM_S390_SKEYS_MAX, KvmS390Keyop, KvmS390Skeys};
use crate::memop::{
    self, Delivery, KvmS390MemOp, UserBuffer, UserMemory, deliver_program_interruption,
    inject_program_interruption,
};
use crate::tprot::{TprotOutcome, test_protection};
use crate::translate::translate_address_with_key;
use crate::vcpu::Vcpu;
use crate::vm::{Facilities, Vm};

/// The largest user buffer the runner allocates for a memop: a SIDA of 256 pages
/// (§3.8), the largest copy any memop can make. Other ops copy at most 64 KiB, and a
/// larger `size` fails validation before any copy (-E2BIG, §3.2), just as the kernel
/// rejects it before allocating. A read whose `size` exceeds this therefore reports
/// `data` as null: the kernel never touches that buffer.
pub const MAX_USER_BUFFER: usize = 256 * 4096;

/// The user-space addresses the runner puts into `buf` and `old_addr` for a valid
/// buffer (the model does not dereference them; a `null` buffer is address 0).
const USER_BUF_ADDR: u64 = 0x3ff_f000_0000;
const USER_OLD_ADDR: u64 = 0x3ff_f100_0000;

// ---------------------------------------------------------------------------------------
// Set-up.

/// A problem with a scenario that only building the machine reveals. `path` is the field
/// (`space#1.map#2`, `vm.data#3`, `step#4.write`), `message` says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SetupError {
    /// The offending field.
    pub path: FieldPath,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl SetupError {
    fn new(path: FieldPath, message: impl Into<String>) -> Self {
        Self {
            path,
            message: message.into(),
        }
    }

    /// The same error as a [`ScenarioError::Invalid`] with the file, line and column of
    /// the field, given the text the scenario was read from.
    pub fn locate(self, text: &str, format: Format, file_name: &str) -> ScenarioError {
        ScenarioError::Invalid {
            location: parse::locate(text, format, file_name, &self.path),
            path: self.path,
            message: self.message,
        }
    }
}

/// Builds field paths: `p(&[k("space"), i(0), k("map"), i(1)])`.
fn path(segments: &[PathSegment]) -> FieldPath {
    FieldPath(segments.to_vec())
}

fn k(s: &str) -> PathSegment {
    PathSegment::Key(s.to_owned())
}

fn i(n: usize) -> PathSegment {
    PathSegment::Index(n)
}

/// One space as built: its name, ASCE and table area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltSpace {
    /// The space's name.
    pub name: String,
    /// Its ASCE (what `space:NAME` stands for).
    pub asce: Asce,
    /// The tables the builder allocated, as `(start, length)`.
    pub tables: Vec<(u64, u64)>,
}

impl BuiltSpace {
    /// The space's table area as `(start, end)`: from its first table (at the space's
    /// `tables` origin) to the end of the last one the builder allocated.
    pub fn area(&self) -> (u64, u64) {
        let start = self.tables.first().map_or(0, |&(t, _)| t);
        let end = self
            .tables
            .iter()
            .map(|&(t, l)| t + l)
            .max()
            .unwrap_or(start);
        (start, end)
    }
}

/// The guest a scenario describes, ready to run steps: the VM, vCPU 0, the spaces and
/// the kernel profile.
#[derive(Debug)]
pub struct Machine {
    /// The VM (storage, keys, facilities).
    pub vm: Vm,
    /// vCPU 0.
    pub vcpu: Vcpu,
    /// The spaces, in file order.
    pub spaces: Vec<BuiltSpace>,
    /// Which kernel's behaviour memops model (the scenario's `profile` unless
    /// overridden).
    pub profile: ModelProfile,
}

fn dt(d: ModelDt) -> DesignationType {
    match d {
        ModelDt::RegionFirst => DesignationType::RegionFirst,
        ModelDt::RegionSecond => DesignationType::RegionSecond,
        ModelDt::RegionThird => DesignationType::RegionThird,
        ModelDt::Segment => DesignationType::Segment,
    }
}

/// The table level of a scenario level.
pub fn table_level(l: Level) -> TableLevel {
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

/// The memop layer's profile for the model's.
pub fn memop_profile(p: ModelProfile) -> memop::Profile {
    match p {
        ModelProfile::Linux70 => memop::Profile::Linux70,
        ModelProfile::Linux63 => memop::Profile::Linux63,
    }
}

/// Whether `[a, a+alen)` and `[b, b+blen)` overlap (u128, so nothing overflows).
fn overlaps(a: u64, alen: u64, b: u64, blen: u64) -> bool {
    let (a, alen, b, blen) = (
        u128::from(a),
        u128::from(alen),
        u128::from(b),
        u128::from(blen),
    );
    alen > 0 && blen > 0 && a < b + blen && b < a + alen
}

/// The first frame number and frame count a key setting addresses.
fn frames(sel: FrameSelection) -> (u64, u64) {
    match sel {
        FrameSelection::At(a) => (a / PAGE_SIZE, 1),
        FrameSelection::Range { start, end } => {
            let first = start / PAGE_SIZE;
            // start < end (the reader checks it), so end - 1 does not underflow.
            let last = end.saturating_sub(1) / PAGE_SIZE;
            (first, last - first + 1)
        }
    }
}

fn selection_text(sel: FrameSelection) -> String {
    match sel {
        FrameSelection::At(a) => format!("the frame holding {a:#x}"),
        FrameSelection::Range { start, end } => format!("the frames of [{start:#x}, {end:#x})"),
    }
}

impl Machine {
    /// Build the machine of `scenario` (see the module documentation for the order).
    pub fn build(scenario: &Scenario) -> Result<Self, SetupError> {
        let vmspec = &scenario.vm;
        let slots: Vec<(u64, u64)> = vmspec.memslots.iter().map(|m| (m.start, m.size)).collect();
        let mut vm = Vm::new(&slots, Facilities::from_numbers(&vmspec.facilities))
            .map_err(|e| SetupError::new(path(&[k("vm"), k("memory")]), e.to_string()))?;
        vm.set_protected(vmspec.protected);

        let spaces = build_spaces(&vm, scenario)?;

        // `vm.data` is written after the tables; it must not land on them.
        for (di, d) in vmspec.data.iter().enumerate() {
            let len = d.bytes.len() as u64;
            for (si, s) in spaces.iter().enumerate() {
                if let Some(&(t, tlen)) =
                    s.tables.iter().find(|&&(t, tl)| overlaps(d.at, len, t, tl))
                {
                    return Err(SetupError::new(
                        path(&[k("vm"), k("data"), i(di)]),
                        format!(
                            "the {len} bytes at {:#x} overlap the DAT table at [{t:#x}, {:#x}) of space \"{}\" (space#{}); \
                             move the data or the space's `tables`, or change entries with an `edit`",
                            d.at,
                            u128::from(t) + u128::from(tlen),
                            s.name,
                            si + 1
                        ),
                    ));
                }
            }
            vm.storage()
                .write(AbsoluteAddress(d.at), &d.bytes)
                .map_err(|_| {
                    SetupError::new(
                        path(&[k("vm"), k("data"), i(di)]),
                        format!("{len} bytes at {:#x} are not all in memory", d.at),
                    )
                })?;
        }

        // Keys: put in use first (which resets every key to 0), then the settings in
        // order (§10.1, §13.1).
        if vmspec.storage_keys {
            vm.enable_keys();
        }
        for (ki, setting) in vmspec.keys.iter().enumerate() {
            apply_key_setting(&vm, setting)
                .map_err(|m| SetupError::new(path(&[k("vm"), k("key"), i(ki)]), m))?;
        }

        let mut vcpu = Vcpu::new();
        let cpu = &scenario.cpu;
        vcpu.psw.mask = cpu.psw_mask;
        for (n, cr) in cpu.cr.iter().enumerate() {
            vcpu.cr[n] = resolve_cr(&spaces, cr)
                .map_err(|m| SetupError::new(path(&[k("cpu"), k("cr"), k(&n.to_string())]), m))?;
        }
        vcpu.ar = cpu.ar;
        vcpu.prefix = cpu.prefix;
        vcpu.protected = scenario.cpu_protected();
        vcpu.sida = cpu.sida.clone();

        check_static_steps(&vm, scenario)?;

        Ok(Self {
            vm,
            vcpu,
            spaces,
            profile: scenario.profile,
        })
    }

    /// The ASCE of the space named `name`.
    pub fn asce(&self, name: &str) -> Option<Asce> {
        self.spaces.iter().find(|s| s.name == name).map(|s| s.asce)
    }
}

/// Build every space: all mappings of each space in file order, then the overlap
/// checks between spaces, then all edits in file order.
fn build_spaces(vm: &Vm, scenario: &Scenario) -> Result<Vec<BuiltSpace>, SetupError> {
    let storage = vm.storage();
    let mut builders: Vec<SpaceBuilder<'_>> = Vec::with_capacity(scenario.spaces.len());
    for (si, s) in scenario.spaces.iter().enumerate() {
        let flags = s.asce_low_bits() & (Asce::G | Asce::P | Asce::S | Asce::X | Asce::R);
        let mut b =
            SpaceBuilder::new(storage, dt(s.designation), s.tables, s.tl, flags).map_err(|e| {
                SetupError::new(
                    path(&[k("space"), i(si), k("tables")]),
                    format!("space \"{}\": {}", s.name, e),
                )
            })?;
        for (mi, m) in s.maps.iter().enumerate() {
            let flags = LeafFlags {
                protect: m.protect,
                iep: m.iep,
            };
            b.map(m.virt, m.abs, m.size, frame_size(m.page), flags)
                .map_err(|e| {
                    SetupError::new(
                        path(&[k("space"), i(si), k("map"), i(mi)]),
                        format!(
                            "space \"{}\", mapping {:#x}+{:#x} ({} pages): {}",
                            s.name,
                            m.virt,
                            m.size,
                            m.page.as_str(),
                            e
                        ),
                    )
                })?;
        }
        // The tables of two spaces must not overlap: the later builder would have
        // overwritten the earlier space's tables with empty ones.
        for (oi, other) in builders.iter().enumerate() {
            for &(t, tl) in b.tables() {
                if let Some(&(o, ol)) = other
                    .tables()
                    .iter()
                    .find(|&&(o, ol)| overlaps(t, tl, o, ol))
                {
                    return Err(SetupError::new(
                        path(&[k("space"), i(si), k("tables")]),
                        format!(
                            "space \"{}\": its table at [{t:#x}, {:#x}) overlaps the table at [{o:#x}, {:#x}) of space \"{}\" (space#{}); \
                             give the spaces disjoint `tables` areas",
                            s.name,
                            u128::from(t) + u128::from(tl),
                            u128::from(o) + u128::from(ol),
                            scenario.spaces[oi].name,
                            oi + 1
                        ),
                    ));
                }
            }
        }
        builders.push(b);
    }
    for (si, (s, b)) in scenario.spaces.iter().zip(&builders).enumerate() {
        for (ei, e) in s.edits.iter().enumerate() {
            let level = table_level(e.level);
            let r = match e.change {
                EntryChange::SetClear { set, clear } => b.edit(e.virt, level, set, clear),
                EntryChange::Value(v) => b.replace(e.virt, level, v),
            };
            r.map_err(|err| {
                SetupError::new(
                    path(&[k("space"), i(si), k("edit"), i(ei)]),
                    format!(
                        "space \"{}\", edit of the {} entry for {:#x}: {}",
                        s.name,
                        e.level.as_str(),
                        e.virt,
                        err
                    ),
                )
            })?;
        }
    }
    Ok(scenario
        .spaces
        .iter()
        .zip(&builders)
        .map(|(s, b)| BuiltSpace {
            name: s.name.clone(),
            asce: b.asce(),
            tables: b.tables().to_vec(),
        })
        .collect())
}

/// Set the keys of a `vm.key` entry directly (set-up, keys already put in use when the
/// scenario says so). Every frame must be in memory and the byte's reserved bit 7 clear.
fn apply_key_setting(vm: &Vm, setting: &KeySetting) -> Result<(), String> {
    if setting.byte & 0x01 != 0 {
        return Err(format!(
            "key byte {:#04x} has the reserved bit 7 (0x01) set; KVM_S390_SET_SKEYS rejects such keys",
            setting.byte
        ));
    }
    let (first, count) = frames(setting.frames);
    let covered = match setting.frames {
        FrameSelection::At(a) => vm.storage().in_memory(AbsoluteAddress(a)),
        FrameSelection::Range { start, end } => range_in_memory(vm, start, end - start),
    };
    if !covered {
        return Err(format!(
            "{} are not all in memory (no memslot holds them)",
            selection_text(setting.frames)
        ));
    }
    for n in 0..count {
        let a = AbsoluteAddress((first + n) * PAGE_SIZE);
        vm.set_storage_key(a, StorageKey(setting.byte))
            .map_err(|_| format!("frame {:#x} is not in memory", a.0))?;
    }
    Ok(())
}

/// Whether every byte of `[start, start+len)` is guest memory (slot by slot, so huge
/// ranges cost nothing).
fn range_in_memory(vm: &Vm, start: u64, len: u64) -> bool {
    let end = u128::from(start) + u128::from(len);
    let mut pos = u128::from(start);
    while pos < end {
        let Some((s, l)) = vm
            .storage()
            .memslots()
            .find(|&(s, l)| u128::from(s) <= pos && pos < u128::from(s) + u128::from(l))
        else {
            return false;
        };
        pos = u128::from(s) + u128::from(l);
    }
    true
}

fn resolve_cr(spaces: &[BuiltSpace], cr: &CrValue) -> Result<u64, String> {
    match cr {
        CrValue::Raw(v) => Ok(*v),
        CrValue::Space(name) => spaces
            .iter()
            .find(|s| &s.name == name)
            .map(|s| s.asce.0)
            .ok_or_else(|| format!("no space is named \"{name}\"")),
    }
}

/// `write`, `check` and `check-key` address absolute storage directly; whether they lie
/// in memory is known before running, so it is a set-up error.
fn check_static_steps(vm: &Vm, scenario: &Scenario) -> Result<(), SetupError> {
    for (n, step) in scenario.steps.iter().enumerate() {
        let (field, at, len) = match &step.kind {
            StepKind::Write(d) => ("write", d.at, d.bytes.len() as u64),
            StepKind::Check(d) => ("check", d.at, d.bytes.len() as u64),
            StepKind::CheckKey(c) => ("check-key", c.at, 1),
            _ => continue,
        };
        if !range_in_memory(vm, at, len) {
            return Err(SetupError::new(
                path(&[k("step"), i(n), k(field)]),
                format!(
                    "{len} bytes at {at:#x} do not lie entirely in memory; `{field}` addresses absolute storage"
                ),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Results.

/// One field an expectation got wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The result field (`ret`, `pgm.teid`, `data`, ...; `memory` for a `check`, `key`
    /// for a `check-key`).
    pub field: String,
    /// The expected value, in the JSON form of results.
    pub expected: serde_json::Value,
    /// The actual value, likewise.
    pub actual: serde_json::Value,
}

/// The result of one step: exactly the result fields of scenario-format.md "Results"
/// (fields that do not apply to a step kind are `None`; see [`StepResult::applies`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    /// The step number, from 1 in file order.
    pub step: usize,
    /// The step kind (`memop`, `write`, ...).
    pub kind: &'static str,
    /// The return value: the ioctl's for memops and the key ioctls, the program-
    /// interruption code or errno for `translate`, the code made pending for `tprot`;
    /// `None` for steps without one.
    pub ret: Option<i64>,
    /// The name of a negative `ret` (`"EINVAL"`, ...).
    pub errno: Option<&'static str>,
    /// The vCPU's program-interruption record after a positive return of a vCPU op (the
    /// record `trans_exc` built); the record of a failing `translate`; the record a
    /// `tprot` made pending.
    pub pgm: Option<PgmInfo>,
    /// The user buffer after a read memop.
    pub data: Option<Vec<u8>>,
    /// The old-value buffer after a cmpxchg.
    pub old: Option<Vec<u8>>,
    /// Whether a program interruption is pending on the vCPU after the step.
    pub pending: bool,
    /// The key bytes of a `get-skeys` (on success).
    pub keys: Option<Vec<u8>>,
    /// The key byte of a `keyop` (on success), or the frame's key of a `check-key`.
    pub key: Option<u8>,
    /// The condition code of a `tprot`.
    pub cc: Option<u8>,
    /// The absolute address of a successful `translate`.
    pub abs: Option<u64>,
    /// Whether a `deliver` delivered (consumed) a program interruption.
    pub delivered: Option<bool>,
    /// Whether every expectation held (and, for `check`/`check-key`, the assertion).
    pub pass: bool,
    /// The fields that did not hold.
    pub failed: Vec<Mismatch>,
    /// For a cmpxchg that returned 0: whether the exchange happened (the `old` buffer
    /// came back unchanged). Not a result field of the format; for human output.
    pub exchanged: Option<bool>,
}

impl StepResult {
    fn new(step: usize, kind: &'static str) -> Self {
        Self {
            step,
            kind,
            ret: None,
            errno: None,
            pgm: None,
            data: None,
            old: None,
            pending: false,
            keys: None,
            key: None,
            cc: None,
            abs: None,
            delivered: None,
            pass: true,
            failed: Vec::new(),
            exchanged: None,
        }
    }

    fn set_ret(&mut self, ret: i32) {
        self.ret = Some(i64::from(ret));
        self.errno = Errno::from_ret(ret).map(Errno::name);
    }

    /// Whether a kind-specific result field applies to this step's kind (and so appears
    /// in JSON, possibly as null). `step`, `kind`, `ret`, `errno`, `pending` and `pass`
    /// apply to every kind.
    pub fn applies(&self, field: &str) -> bool {
        matches!(
            (self.kind, field),
            ("memop", "pgm" | "data" | "old")
                | ("translate", "pgm" | "abs")
                | ("tprot", "pgm" | "cc")
                | ("keyop" | "check-key", "key")
                | ("get-skeys", "keys")
                | ("deliver", "delivered")
        )
    }
}

// ----- JSON forms of values, shared with the report -----

/// `0x` and 16 hex digits, the form of `teid` and `abs`.
pub fn hex64(v: u64) -> String {
    format!("{v:#018x}")
}

/// The JSON form of a program-interruption record.
pub fn pgm_json(p: &PgmInfo) -> serde_json::Value {
    serde_json::json!({
        "code": p.code,
        "teid": hex64(p.teid.0),
        "exc_access_id": p.exc_access_id,
        "op_access_id": p.op_access_id,
    })
}

fn opt_json<T>(v: Option<T>, f: impl FnOnce(T) -> serde_json::Value) -> serde_json::Value {
    v.map_or(serde_json::Value::Null, f)
}

fn hex_json(b: &[u8]) -> serde_json::Value {
    serde_json::Value::String(super::value::encode_hex(b))
}

/// Compare `expect` with the result; only the fields given are compared (format
/// "Results": `expect` may hold any result field).
fn compare(expect: &Expect, r: &StepResult) -> Vec<Mismatch> {
    use serde_json::Value;
    let mut out = Vec::new();
    let mut check = |field: &str, equal: bool, expected: Value, actual: Value| {
        if !equal {
            out.push(Mismatch {
                field: field.to_owned(),
                expected,
                actual,
            });
        }
    };
    if let Some(want) = expect.ret {
        check(
            "ret",
            want == r.ret,
            opt_json(want, Value::from),
            opt_json(r.ret, Value::from),
        );
    }
    if let Some(want) = &expect.errno {
        check(
            "errno",
            want.as_deref() == r.errno,
            opt_json(want.as_deref(), Value::from),
            opt_json(r.errno, Value::from),
        );
    }
    match &expect.pgm {
        None => {}
        Some(None) => check(
            "pgm",
            r.pgm.is_none(),
            Value::Null,
            opt_json(r.pgm.as_ref(), pgm_json),
        ),
        Some(Some(parts)) => {
            let got = r.pgm;
            let no_part = parts.code.is_none()
                && parts.teid.is_none()
                && parts.exc_access_id.is_none()
                && parts.op_access_id.is_none();
            if no_part {
                // `pgm = {}`: a record is expected, whatever it holds.
                check(
                    "pgm",
                    got.is_some(),
                    serde_json::json!({}),
                    opt_json(got.as_ref(), pgm_json),
                );
            }
            if let Some(code) = parts.code {
                let a = got.map(|p| p.code);
                check(
                    "pgm.code",
                    a == Some(code),
                    Value::from(code),
                    opt_json(a, Value::from),
                );
            }
            if let Some(teid) = parts.teid {
                let a = got.map(|p| p.teid.0);
                check(
                    "pgm.teid",
                    a == Some(teid),
                    Value::from(hex64(teid)),
                    opt_json(a, |t| Value::from(hex64(t))),
                );
            }
            if let Some(id) = parts.exc_access_id {
                let a = got.map(|p| p.exc_access_id);
                check(
                    "pgm.exc_access_id",
                    a == Some(id),
                    Value::from(id),
                    opt_json(a, Value::from),
                );
            }
            if let Some(id) = parts.op_access_id {
                let a = got.map(|p| p.op_access_id);
                check(
                    "pgm.op_access_id",
                    a == Some(id),
                    Value::from(id),
                    opt_json(a, Value::from),
                );
            }
        }
    }
    for (field, want, got) in [
        ("data", &expect.data, &r.data),
        ("old", &expect.old, &r.old),
        ("keys", &expect.keys, &r.keys),
    ] {
        if let Some(want) = want {
            check(
                field,
                want == got,
                opt_json(want.as_deref(), hex_json),
                opt_json(got.as_deref(), hex_json),
            );
        }
    }
    if let Some(want) = expect.pending {
        check(
            "pending",
            want == r.pending,
            Value::from(want),
            Value::from(r.pending),
        );
    }
    if let Some(want) = expect.abs {
        check(
            "abs",
            want == r.abs,
            opt_json(want, |a| Value::from(hex64(a))),
            opt_json(r.abs, |a| Value::from(hex64(a))),
        );
    }
    if let Some(want) = expect.cc {
        check(
            "cc",
            want == r.cc,
            opt_json(want, Value::from),
            opt_json(r.cc, Value::from),
        );
    }
    if let Some(want) = expect.key {
        check(
            "key",
            want == r.key,
            opt_json(want, Value::from),
            opt_json(r.key, Value::from),
        );
    }
    if let Some(want) = expect.delivered {
        check(
            "delivered",
            want == r.delivered,
            opt_json(want, Value::from),
            opt_json(r.delivered, Value::from),
        );
    }
    out
}

// ---------------------------------------------------------------------------------------
// Running steps.

impl Machine {
    /// Run one step (`number` counts from 1) and compare its expectations.
    pub fn run_step(&mut self, number: usize, step: &Step) -> StepResult {
        let mut r = StepResult::new(number, step.kind.name());
        let mut assertion: Option<Mismatch> = None;
        match &step.kind {
            StepKind::Memop(m) => self.memop(m, &mut r),
            StepKind::Write(d) => {
                if self
                    .vm
                    .storage()
                    .write(AbsoluteAddress(d.at), &d.bytes)
                    .is_err()
                {
                    // Checked at set-up; kept as a result rather than a panic.
                    r.set_ret(Errno::Efault.ret());
                }
            }
            StepKind::Set(s) => self.set(s),
            StepKind::SetKey(setting) => {
                let ret = set_keys_ioctl(&self.vm, setting);
                r.set_ret(ret);
            }
            StepKind::Keyop(kop) => {
                let mut arg = KvmS390Keyop::new(kop.op.number(), kop.at, kop.key);
                let ret = memop::keyop(&self.vm, &mut arg);
                r.set_ret(ret);
                r.key = (ret == 0).then_some(arg.key);
            }
            StepKind::GetSkeys(g) => {
                let args = KvmS390Skeys::new(g.at / PAGE_SIZE, g.count);
                // More than KVM_S390_SKEYS_MAX frames fail validation before any copy.
                let n = g.count.min(KVM_S390_SKEYS_MAX) as usize;
                let mut buf = vec![0u8; n];
                let ret = memop::get_skeys(&self.vm, &args, &mut UserBuffer::Valid(&mut buf));
                r.set_ret(ret);
                r.keys = (ret == 0).then_some(buf);
            }
            StepKind::Deliver => match deliver_program_interruption(&self.vm, &mut self.vcpu) {
                Delivery::NothingPending => r.delivered = Some(false),
                Delivery::Delivered => r.delivered = Some(true),
                Delivery::LowcoreNotInMemory => {
                    // Consumed, but KVM_RUN would fail with -EFAULT (memop::inject).
                    r.delivered = Some(true);
                    r.set_ret(Errno::Efault.ret());
                }
            },
            StepKind::Translate(t) => {
                let mode = access_mode(t.access);
                match AccessKey::new(t.key) {
                    // A memop rejects keys above 15 before translating (§3.2 step 3).
                    None => r.set_ret(Errno::Einval.ret()),
                    Some(key) => {
                        match translate_address_with_key(
                            &self.vm, &self.vcpu, t.gaddr, t.ar, mode, key,
                        ) {
                            Ok(a) => {
                                r.set_ret(0);
                                r.abs = Some(a.0);
                            }
                            Err(AccessError::Program(p)) => {
                                // trans_exc fills vcpu->arch.pgm (§9.3).
                                self.vcpu.pgm = p.info;
                                r.set_ret(i32::from(p.code.0));
                                r.pgm = Some(p.info);
                            }
                            Err(AccessError::Errno(e)) => r.set_ret(e.ret()),
                        }
                    }
                }
            }
            StepKind::Tprot(t) => match test_protection(&self.vm, &self.vcpu, t.gaddr, t.ar, t.key)
            {
                TprotOutcome::ConditionCode(cc) => r.cc = Some(cc),
                TprotOutcome::Program(p) => {
                    // §16 steps 1 and 6: the interruption is injected instead of a cc.
                    inject_program_interruption(&mut self.vcpu, p.info);
                    r.set_ret(i32::from(p.code.0));
                    r.pgm = Some(p.info);
                }
            },
            StepKind::Check(d) => {
                let mut actual = vec![0u8; d.bytes.len()];
                let read = self
                    .vm
                    .storage()
                    .read(AbsoluteAddress(d.at), &mut actual)
                    .is_ok();
                if !read || actual != d.bytes {
                    assertion = Some(Mismatch {
                        field: "memory".into(),
                        expected: hex_json(&d.bytes),
                        actual: if read {
                            hex_json(&actual)
                        } else {
                            serde_json::Value::Null
                        },
                    });
                }
            }
            StepKind::CheckKey(c) => {
                r.key = self.vm.storage_key(AbsoluteAddress(c.at)).ok().map(|k| k.0);
                if r.key != Some(c.byte) {
                    assertion = Some(Mismatch {
                        field: "key".into(),
                        expected: serde_json::Value::from(c.byte),
                        actual: opt_json(r.key, serde_json::Value::from),
                    });
                }
            }
        }
        r.pending = self.vcpu.pending_pgm.is_some();
        r.failed.extend(assertion);
        if let Some(e) = &step.expect {
            r.failed.extend(compare(e, &r));
        }
        r.pass = r.failed.is_empty();
        r
    }

    /// One `KVM_S390_MEM_OP` through the raw entry point of the step's ioctl.
    fn memop(&mut self, m: &MemopStep, r: &mut StepResult) {
        let mut mop = KvmS390MemOp::new(m.op.number(), m.gaddr, m.size);
        mop.set_flags(m.flags);
        match m.sida_offset {
            Some(off) => mop.set_sida_offset(off),
            None => {
                mop.set_ar(m.ar);
                mop.set_key(m.key);
            }
        }
        let buf_valid = m.buf == UserBuf::Valid;
        let old_valid = m.old_addr == UserBuf::Valid;
        mop.set_buf(if buf_valid { USER_BUF_ADDR } else { 0 });
        mop.set_old_addr(if old_valid { USER_OLD_ADDR } else { 0 });

        let kind = m.op.kind();
        let size = m.size as usize;
        let zeros = || vec![0u8; size.min(MAX_USER_BUFFER)];
        let mut buf = m.data.clone().unwrap_or_else(zeros);
        let is_cmpxchg = kind == Some(MemOpKind::AbsoluteCmpxchg);
        let mut old = if is_cmpxchg {
            m.old.clone().unwrap_or_else(zeros)
        } else {
            Vec::new()
        };
        let old_before = old.clone();
        let profile = memop_profile(self.profile);
        let ret = {
            let mut user = UserMemory {
                buf: if buf_valid {
                    UserBuffer::Valid(&mut buf)
                } else {
                    UserBuffer::Null
                },
                old: if old_valid && is_cmpxchg {
                    UserBuffer::Valid(&mut old)
                } else {
                    UserBuffer::Null
                },
            };
            match m.ioctl {
                Ioctl::Vm => memop::vm_mem_op(&self.vm, profile, &mop, &mut user),
                Ioctl::Vcpu => {
                    memop::vcpu_mem_op(&self.vm, &mut self.vcpu, profile, &mop, &mut user)
                }
            }
        };
        r.set_ret(ret);
        if ret > 0 && m.ioctl == Ioctl::Vcpu {
            r.pgm = Some(self.vcpu.pgm);
        }
        let is_read = kind.is_some_and(MemOpKind::is_read);
        if is_read && buf_valid && buf.len() == size {
            r.data = Some(buf);
        }
        if is_cmpxchg && old_valid {
            if ret == 0 {
                r.exchanged = Some(old == old_before);
            }
            r.old = Some(old);
        }
    }

    fn set(&mut self, s: &SetStep) {
        if let Some(mask) = s.psw_mask {
            self.vcpu.psw.mask = mask;
        }
        for (n, cr) in s.cr.iter().enumerate() {
            if let Some(cr) = cr
                && let Ok(v) = resolve_cr(&self.spaces, cr)
            {
                self.vcpu.cr[n] = v;
            }
        }
        for (n, ar) in s.ar.iter().enumerate() {
            if let Some(ar) = ar {
                self.vcpu.ar[n] = *ar;
            }
        }
        if let Some(p) = s.prefix {
            self.vcpu.prefix = p;
        }
    }

    /// Run every step of `scenario` in order.
    pub fn run_all(&mut self, scenario: &Scenario) -> Vec<StepResult> {
        scenario
            .steps
            .iter()
            .enumerate()
            .map(|(n, s)| self.run_step(n + 1, s))
            .collect()
    }
}

fn access_mode(a: AccessMode) -> exception::AccessMode {
    match a {
        AccessMode::Fetch => exception::AccessMode::Fetch,
        AccessMode::Store => exception::AccessMode::Store,
    }
}

/// A `set-key` step: `KVM_S390_SET_SKEYS` with `count` copies of the key byte, issued
/// in calls of at most `KVM_S390_SKEYS_MAX` frames (as QEMU does) so that large ranges
/// work. Returns the first nonzero result (-EINVAL for a reserved bit, -EFAULT for a
/// frame outside memory, earlier frames already set), else 0. The first call puts keys
/// in use (§13.1).
fn set_keys_ioctl(vm: &Vm, setting: &KeySetting) -> i32 {
    let (first, count) = frames(setting.frames);
    let mut done = 0u64;
    while done < count {
        let n = (count - done).min(KVM_S390_SKEYS_MAX);
        let mut bytes = vec![setting.byte; n as usize];
        let args = KvmS390Skeys::new(first.wrapping_add(done), n);
        let ret = memop::set_skeys(vm, &args, &UserBuffer::Valid(&mut bytes));
        if ret != 0 {
            return ret;
        }
        done += n;
    }
    0
}

/// Run `scenario` from a freshly built machine; `profile` overrides the scenario's.
pub fn run(
    scenario: &Scenario,
    profile: Option<ModelProfile>,
) -> Result<Vec<StepResult>, SetupError> {
    let mut m = Machine::build(scenario)?;
    if let Some(p) = profile {
        m.profile = p;
    }
    Ok(m.run_all(scenario))
}

/// A scenario file read and its machine built.
#[derive(Debug)]
pub struct Loaded {
    /// The scenario.
    pub scenario: Scenario,
    /// Its machine, before any step ran.
    pub machine: Machine,
}

/// Read the scenario at `path` and build its machine. Every error (unreadable file,
/// syntax, invalid value, set-up problem) names the file and, where the format allows,
/// the line and column.
pub fn load(path: &Path) -> Result<Loaded, ScenarioError> {
    let (text, format, file) = parse::read(path)?;
    load_str(&text, format, &file)
}

/// [`load`] for text in memory; `file_name` names it in messages.
pub fn load_str(text: &str, format: Format, file_name: &str) -> Result<Loaded, ScenarioError> {
    let scenario = parse::parse_str(text, format, file_name)?;
    let machine = Machine::build(&scenario).map_err(|e| e.locate(text, format, file_name))?;
    Ok(Loaded { scenario, machine })
}
