//! Step results for people and for programs (scenario-format.md "Results").
//!
//! * [`json_line`]: one JSON object per step, with the fields that apply to its kind;
//! * [`Table`]: the readable table of `s390-gaccess run`, one line per step: number,
//!   what ran, the return value with its name, the exception with its TEID decoded,
//!   PASS/FAIL;
//! * [`diff`]: the failing expectations of a step, expected against actual.
//!
//! Section numbers (§) cite kernel-semantics.md.
#![forbid(unsafe_code)]

use serde::Serialize;

use super::model::{
    FrameSelection, Ioctl, KeySetting, MemOpCode, MemopStep, SetStep, Step, StepKind, UserBuf,
    memop_flags,
};
use super::run::{Mismatch, StepResult, hex64};
use super::value::encode_hex;
use crate::exception::{
    Errno, FetchStoreIndication, PgmInfo, ProgramInterruptionCode as Pgm, Teid,
};
use crate::keys::StorageKey;

// ---------------------------------------------------------------------------------------
// JSON Lines.

#[derive(Serialize)]
struct JsonPgm {
    code: u16,
    teid: String,
    exc_access_id: u8,
    op_access_id: u8,
}

impl From<&PgmInfo> for JsonPgm {
    fn from(p: &PgmInfo) -> Self {
        Self {
            code: p.code,
            teid: hex64(p.teid.0),
            exc_access_id: p.exc_access_id,
            op_access_id: p.op_access_id,
        }
    }
}

#[derive(Serialize)]
struct JsonMismatch<'a> {
    field: &'a str,
    expected: &'a serde_json::Value,
    actual: &'a serde_json::Value,
}

/// The JSON object of one step. `Option<Option<T>>` fields: outer `None` = the field
/// does not apply to the kind (omitted), `Some(None)` = null.
#[derive(Serialize)]
struct JsonResult<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    step: usize,
    kind: &'a str,
    ret: Option<i64>,
    errno: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pgm: Option<Option<JsonPgm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    old: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keys: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<Option<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cc: Option<Option<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    abs: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered: Option<Option<bool>>,
    pending: bool,
    pass: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failed: Vec<JsonMismatch<'a>>,
}

/// One step as a JSON object on one line (no trailing newline), with the fields that
/// apply to its kind ([`StepResult::applies`]); `failed` only when `pass` is false.
/// `file` adds a `"file"` member first (the CLI does so when it runs several files).
pub fn json_line(r: &StepResult, file: Option<&str>) -> String {
    let when = |field: &str| r.applies(field);
    let hex = |b: &Option<Vec<u8>>| b.as_deref().map(encode_hex);
    let j = JsonResult {
        file,
        step: r.step,
        kind: r.kind,
        ret: r.ret,
        errno: r.errno,
        pgm: when("pgm").then(|| r.pgm.as_ref().map(JsonPgm::from)),
        data: when("data").then(|| hex(&r.data)),
        old: when("old").then(|| hex(&r.old)),
        keys: when("keys").then(|| hex(&r.keys)),
        key: when("key").then_some(r.key),
        cc: when("cc").then_some(r.cc),
        abs: when("abs").then(|| r.abs.map(hex64)),
        delivered: when("delivered").then_some(r.delivered),
        pending: r.pending,
        pass: r.pass,
        failed: r
            .failed
            .iter()
            .map(|m| JsonMismatch {
                field: &m.field,
                expected: &m.expected,
                actual: &m.actual,
            })
            .collect(),
    };
    // Serializing plain data to a String cannot fail.
    serde_json::to_string(&j).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Words for values.

/// The name of a program-interruption code, as §9.1 spells it.
pub fn code_name(code: u16) -> &'static str {
    Pgm(code).name()
}

/// A return value with its name: `0`, `4 (protection)`, `-22 (EINVAL)`. `kind` is the
/// step kind (a `get-skeys` returns 1 for `KVM_S390_GET_SKEYS_NONE`).
pub fn ret_text(kind: &str, ret: i64) -> String {
    match ret {
        0 => "0".to_owned(),
        1 if kind == "get-skeys" => "1 (KVM_S390_GET_SKEYS_NONE)".to_owned(),
        r if r > 0 => match u16::try_from(r) {
            Ok(c) => format!("{r} ({})", code_name(c)),
            Err(_) => r.to_string(),
        },
        r => match i32::try_from(r).ok().and_then(Errno::from_ret) {
            Some(e) => format!("{r} ({})", e.name()),
            None => r.to_string(),
        },
    }
}

/// The address-space indication (TEID bits 62-63, PSW AS bits, §9.2).
pub fn as_name(bits: u8) -> &'static str {
    match bits & 3 {
        0 => "primary",
        1 => "access-register",
        2 => "secondary",
        _ => "home",
    }
}

/// The TEID of a record with code `code`, decoded (§9.2, §9.3): address, fetch/store,
/// for protection the ESOP-2 reading of bits 56/60/61, and the address space.
pub fn teid_text(teid: Teid, code: u16) -> String {
    let fsi = match teid.fsi() {
        FetchStoreIndication::Store => "store",
        FetchStoreIndication::Fetch => "fetch",
        FetchStoreIndication::None => "no fetch/store indication",
        FetchStoreIndication::Reserved => "fetch/store indication 11 (reserved)",
    };
    let mut parts = vec![format!("address {:#x}", teid.address()), fsi.to_owned()];
    if code == Pgm::PROTECTION.0 {
        let (b56, b60, b61) = teid.protection_bits();
        parts.push(format!(
            "{} (bits 56,60,61 = {}{}{})",
            teid.protection_meaning(),
            u8::from(b56),
            u8::from(b60),
            u8::from(b61)
        ));
    }
    parts.push(format!("AS {}", as_name(teid.address_space())));
    parts.join(", ")
}

/// A program-interruption record for people: the code with its name, the TEID decoded
/// where the code records one, and the exception access id where it records one (§9.3).
pub fn pgm_text(p: &PgmInfo) -> String {
    let code = Pgm(p.code);
    let mut s = format!("PGM {:#04x} {}", p.code, code.name());
    if code.records_teid_address() {
        s.push_str(&format!(
            ", TEID {} ({})",
            hex64(p.teid.0),
            teid_text(p.teid, p.code)
        ));
    } else if p.teid.0 != 0 {
        s.push_str(&format!(", TEID {}", hex64(p.teid.0)));
    } else if !code.records_access_id() {
        s.push_str(" (no TEID)");
    }
    if code.records_access_id() && (p.exc_access_id != 0 || !code.records_teid_address()) {
        s.push_str(&format!(", exception access id {}", p.exc_access_id));
    }
    if p.op_access_id != 0 {
        s.push_str(&format!(", operand access id {}", p.op_access_id));
    }
    s
}

/// A storage-key byte with its fields.
pub fn key_text(byte: u8) -> String {
    let k = StorageKey(byte);
    format!(
        "{byte:#04x} (ACC {}, F {}, R {}, C {})",
        k.acc(),
        u8::from(k.fetch_protected()),
        u8::from(k.referenced()),
        u8::from(k.changed())
    )
}

/// The meaning of a TEST PROTECTION condition code (§16).
pub fn cc_text(cc: u8) -> &'static str {
    match cc {
        0 => "fetch and store permitted",
        1 => "fetch permitted, store not",
        2 => "neither fetch nor store permitted",
        _ => "translation not available",
    }
}

/// At most `max` bytes as hex, with an ellipsis and the length when there are more.
pub fn short_hex(b: &[u8], max: usize) -> String {
    if b.len() <= max {
        encode_hex(b)
    } else {
        format!("{}… ({} bytes)", encode_hex(&b[..max]), b.len())
    }
}

/// Flag bits in short words: `check-only`, `inject` (INJECT_EXCEPTION), `skey`
/// (SKEY_PROTECTION), and any other bits in hex.
fn flags_text(flags: u64) -> String {
    let mut names = Vec::new();
    let mut rest = flags;
    for (name, bit) in [
        ("check-only", memop_flags::CHECK_ONLY),
        ("inject", memop_flags::INJECT_EXCEPTION),
        ("skey", memop_flags::SKEY_PROTECTION),
    ] {
        if flags & bit != 0 {
            names.push(name.to_owned());
            rest &= !bit;
        }
    }
    if rest != 0 {
        names.push(format!("{rest:#x}"));
    }
    names.join(",")
}

fn memop_text(m: &MemopStep) -> String {
    let mut s = String::from("memop ");
    match m.op {
        MemOpCode::Named(k) => {
            s.push_str(k.as_str());
            if m.ioctl != k.default_ioctl() {
                s.push_str(match m.ioctl {
                    Ioctl::Vm => " ioctl=vm",
                    Ioctl::Vcpu => " ioctl=vcpu",
                });
            }
        }
        MemOpCode::Raw(n) => {
            s.push_str(&format!(
                "op={n} ioctl={}",
                match m.ioctl {
                    Ioctl::Vm => "vm",
                    Ioctl::Vcpu => "vcpu",
                }
            ));
        }
    }
    s.push_str(&format!(" gaddr={:#x} size={}", m.gaddr, m.size));
    if m.flags != 0 {
        s.push_str(&format!(" flags={}", flags_text(m.flags)));
    }
    match m.sida_offset {
        Some(off) => s.push_str(&format!(" sida-offset={off:#x}")),
        None => {
            if m.key != 0 || m.flags & memop_flags::SKEY_PROTECTION != 0 {
                s.push_str(&format!(" key={}", m.key));
            }
            if m.ar != 0 {
                s.push_str(&format!(" ar={}", m.ar));
            }
        }
    }
    if m.buf == UserBuf::Null {
        s.push_str(" buf=null");
    }
    if m.old_addr == UserBuf::Null {
        s.push_str(" old-addr=null");
    }
    s
}

fn frames_text(sel: FrameSelection) -> String {
    match sel {
        FrameSelection::At(a) => format!("{a:#x}"),
        FrameSelection::Range { start, end } => format!("[{start:#x}, {end:#x})"),
    }
}

fn set_key_text(k: &KeySetting) -> String {
    format!("set-key {} = {:#04x}", frames_text(k.frames), k.byte)
}

fn set_text(s: &SetStep) -> String {
    let mut parts = vec!["set".to_owned()];
    if let Some(m) = s.psw_mask {
        parts.push(format!("psw={m:#018x}"));
    }
    for (n, cr) in s.cr.iter().enumerate() {
        if let Some(cr) = cr {
            parts.push(match cr {
                super::model::CrValue::Raw(v) => format!("cr{n}={v:#x}"),
                super::model::CrValue::Space(name) => format!("cr{n}=space:{name}"),
            });
        }
    }
    for (n, ar) in s.ar.iter().enumerate() {
        if let Some(ar) = ar {
            parts.push(format!("ar{n}={ar:#x}"));
        }
    }
    if let Some(p) = s.prefix {
        parts.push(format!("prefix={p:#x}"));
    }
    parts.join(" ")
}

fn bytes_count(n: usize) -> String {
    if n == 1 {
        "1 byte".to_owned()
    } else {
        format!("{n} bytes")
    }
}

/// What a step does, in one line: `memop logical-read gaddr=0x1000 size=8 key=2`.
pub fn describe(kind: &StepKind) -> String {
    match kind {
        StepKind::Memop(m) => memop_text(m),
        StepKind::Write(d) => format!("write {} at {:#x}", bytes_count(d.bytes.len()), d.at),
        StepKind::Set(s) => set_text(s),
        StepKind::SetKey(k) => set_key_text(k),
        StepKind::Keyop(k) => format!(
            "keyop {} at={:#x}{}",
            match k.op {
                super::model::KeyopOp::Iske => "iske",
                super::model::KeyopOp::Rrbe => "rrbe",
                super::model::KeyopOp::Sske => "sske",
            },
            k.at,
            if k.key != 0 {
                format!(" key={:#04x}", k.key)
            } else {
                String::new()
            }
        ),
        StepKind::GetSkeys(g) => format!("get-skeys at={:#x} count={}", g.at, g.count),
        StepKind::Deliver => "deliver".to_owned(),
        StepKind::Translate(t) => format!(
            "translate {} gaddr={:#x}{}{}",
            match t.access {
                super::model::AccessMode::Fetch => "fetch",
                super::model::AccessMode::Store => "store",
            },
            t.gaddr,
            if t.ar != 0 {
                format!(" ar={}", t.ar)
            } else {
                String::new()
            },
            if t.key != 0 {
                format!(" key={}", t.key)
            } else {
                String::new()
            },
        ),
        StepKind::Tprot(t) => format!(
            "tprot gaddr={:#x} key={}{}",
            t.gaddr,
            t.key,
            if t.ar != 0 {
                format!(" ar={}", t.ar)
            } else {
                String::new()
            }
        ),
        StepKind::Check(d) => format!("check {} at {:#x}", bytes_count(d.bytes.len()), d.at),
        StepKind::CheckKey(c) => format!("check-key {:#x} = {:#04x}", c.at, c.byte),
    }
}

/// The return column of the table: the return value with its name, or the condition
/// code of a `tprot`, or `-` for steps without either.
pub fn ret_column(r: &StepResult) -> String {
    match (r.ret, r.cc) {
        (Some(ret), _) => ret_text(r.kind, ret),
        (None, Some(cc)) => format!("cc {cc}"),
        (None, None) => "-".to_owned(),
    }
}

/// The detail column of the table: the exception with its TEID decoded, the data read,
/// keys, addresses, and whether an interruption is pending.
pub fn detail_column(r: &StepResult) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(p) = &r.pgm {
        parts.push(pgm_text(p));
    }
    if let Some(d) = &r.data {
        parts.push(format!("data={}", short_hex(d, 16)));
    }
    match (r.exchanged, &r.old) {
        (Some(true), _) => parts.push("exchanged".to_owned()),
        (Some(false), Some(o)) => parts.push(format!("not exchanged, old={}", short_hex(o, 16))),
        (None, Some(o)) => parts.push(format!("old={}", short_hex(o, 16))),
        _ => {}
    }
    if let Some(k) = &r.keys {
        parts.push(format!("keys={}", short_hex(k, 16)));
    }
    if let Some(k) = r.key {
        parts.push(format!("key={}", key_text(k)));
    }
    if let Some(cc) = r.cc {
        parts.push(cc_text(cc).to_owned());
    }
    if let Some(a) = r.abs {
        parts.push(format!("abs={a:#x}"));
    }
    match r.delivered {
        Some(true) => parts.push("delivered".to_owned()),
        Some(false) => parts.push("nothing pending".to_owned()),
        None => {}
    }
    if r.kind == "check" {
        parts.push(if r.failed.iter().any(|m| m.field == "memory") {
            "memory differs".to_owned()
        } else {
            "memory matches".to_owned()
        });
    }
    if r.pending {
        parts.push("pgm pending".to_owned());
    }
    parts.join("; ")
}

/// The readable table of one file's results.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<[String; 5]>,
}

impl Table {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a step's row.
    pub fn push(&mut self, step: &Step, r: &StepResult) {
        self.rows.push([
            r.step.to_string(),
            describe(&step.kind),
            ret_column(r),
            detail_column(r),
            if r.pass { "PASS" } else { "FAIL" }.to_owned(),
        ]);
    }

    /// The rows: step number, what ran, the return value, PASS/FAIL, then the details
    /// (exception and TEID, data, keys...). The first three columns are padded to their
    /// widest entry (the description to at most 80 characters) so verdicts line up.
    pub fn render(&self) -> String {
        let width = |c: usize, cap: usize| {
            self.rows
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
                .min(cap)
        };
        let (w0, w1, w2) = (width(0, 6), width(1, 80), width(2, 32));
        let mut out = String::new();
        for r in &self.rows {
            let line = format!(
                "{:>w0$}  {:<w1$}  {:<w2$}  {}  {}",
                r[0], r[1], r[2], r[4], r[3]
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn value_text(field: &str, v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "null".to_owned(),
        Value::Number(n) if field == "ret" => n
            .as_i64()
            .map_or_else(|| n.to_string(), |r| ret_text("", r)),
        Value::Number(n) if field == "key" => n
            .as_u64()
            .and_then(|b| u8::try_from(b).ok())
            .map_or_else(|| n.to_string(), key_text),
        Value::Number(n) if field == "pgm.code" => n
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .map_or_else(|| n.to_string(), |c| format!("{c:#04x} ({})", code_name(c))),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Two hex strings side by side: if they are long, the first differing byte and a
/// window around it.
fn hex_diff(expected: &str, actual: &str) -> Option<String> {
    const SHOW: usize = 32; // hex digits
    if expected.len() <= 2 * SHOW && actual.len() <= 2 * SHOW {
        return None;
    }
    let first = expected
        .as_bytes()
        .iter()
        .zip(actual.as_bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(actual.len()))
        & !1;
    let window = |s: &str| {
        let end = (first + SHOW).min(s.len());
        let start = first.min(end);
        format!(
            "{}{}{}",
            if start > 0 { "…" } else { "" },
            s.get(start..end).unwrap_or(""),
            if end < s.len() { "…" } else { "" }
        )
    };
    Some(format!(
        "first difference at byte {} ({} vs {} bytes):\n        expected {}\n        actual   {}",
        first / 2,
        expected.len() / 2,
        actual.len() / 2,
        window(expected),
        window(actual)
    ))
}

fn mismatch_text(m: &Mismatch) -> String {
    if let (serde_json::Value::String(e), serde_json::Value::String(a)) = (&m.expected, &m.actual)
        && let Some(d) = hex_diff(e, a)
    {
        return format!("    {}: {d}", m.field);
    }
    format!(
        "    {}: expected {}, actual {}",
        m.field,
        value_text(&m.field, &m.expected),
        value_text(&m.field, &m.actual)
    )
}

/// The failing expectations of one step for standard error:
///
/// ```text
/// FAIL examples/quickstart.toml:42: step 3: memop logical-read gaddr=0x1000 size=8
///     ret: expected 4 (protection), actual 0
/// ```
pub fn diff(file: &str, step: &Step, r: &StepResult) -> String {
    let place = match step.line {
        Some(l) => format!("{file}:{l}"),
        None => file.to_owned(),
    };
    let mut out = format!("FAIL {place}: step {}: {}\n", r.step, describe(&step.kind));
    for m in &r.failed {
        out.push_str(&mismatch_text(m));
        out.push('\n');
    }
    out
}
