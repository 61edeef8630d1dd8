//! The scenario runner: every step kind, the result fields each produces, expectation
//! comparison, JSON lines, and set-up errors that name file, line, column and field.
//!
//! Expected values are derived by hand from kernel-semantics.md (§ cited); the scenarios
//! are written inline so that each test shows the whole guest.

use proptest::prelude::*;
use s390_gaccess::scenario::report::json_line;
use s390_gaccess::scenario::run::{self, Loaded, StepResult};
use s390_gaccess::scenario::{Format, Profile, parse_str};

fn load(text: &str) -> Loaded {
    run::load_str(text, Format::Toml, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn run_all(text: &str) -> Vec<StepResult> {
    let mut l = load(text);
    l.machine.run_all(&l.scenario)
}

/// Run and require every expectation to hold; return the results.
fn run_ok(text: &str) -> Vec<StepResult> {
    let results = run_all(text);
    for r in &results {
        assert!(
            r.pass,
            "step {} ({}) failed: {:?}",
            r.step, r.kind, r.failed
        );
    }
    results
}

fn setup_error(text: &str) -> String {
    match run::load_str(text, Format::Toml, "test.toml") {
        Ok(_) => panic!("expected a set-up error"),
        Err(e) => {
            assert_eq!(e.file(), "test.toml");
            assert!(
                e.line().is_some() && e.column().is_some(),
                "no position: {e}"
            );
            e.to_string()
        }
    }
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "`{p}` not in: {msg}");
    }
}

// ---------------------------------------------------------------------------------------
// memop

/// §3.2, §3.5, §3.6, §3.1, §3.4, §3.9: validation results through the raw entry points.
#[test]
fn memop_validation_errors() {
    let r = run_ok(
        r#"
[vm]
memory = "1M"

[[step]]  # size 0 (§3.2 step 1)
memop = { op = "logical-read", size = 0 }
expect = { ret = -22, errno = "EINVAL", pending = false }

[[step]]  # size > 65536 (§3.2 step 2); the read buffer starts as size zero bytes
memop = { op = "logical-read", size = 65537 }
expect = { ret = -7, errno = "E2BIG", data = { fill = 0, len = 65537 } }

[[step]]  # a huge size is rejected before any buffer is needed
memop = { op = "logical-read", size = "0xffffffff" }
expect = { ret = -7, errno = "E2BIG" }

[[step]]  # key > 15 with the skey flag (§3.2 step 3)
memop = { op = "logical-read", size = 8, key = 16, flags = ["skey-protection"] }
expect = { ret = -22 }

[[step]]  # a key > 15 without the flag is ignored (forced to 0)
memop = { op = "logical-read", size = 8, key = 16 }
expect = { ret = 0 }

[[step]]  # ar >= 16 (§3.6 step 2), whatever the PSW's AS
memop = { op = "logical-read", size = 8, ar = 16 }
expect = { ret = -22 }

[[step]]  # absolute op on the vcpu fd (§3.5)
memop = { op = "absolute-read", ioctl = "vcpu", size = 8 }
expect = { ret = -22 }

[[step]]  # logical op on the vm fd (§3.1)
memop = { op = "logical-read", ioctl = "vm", size = 8 }
expect = { ret = -22 }

[[step]]  # unknown op
memop = { op = 7, ioctl = "vm", size = 8 }
expect = { ret = -22 }

[[step]]  # unknown flag bit
memop = { op = "logical-read", size = 8, flags = "0x8" }
expect = { ret = -22 }

[[step]]  # cmpxchg of 3 bytes in memory (§7 step 1, §6.4)
memop = { op = "absolute-cmpxchg", gaddr = 0x1000, data = { hex = "010203" } }
expect = { ret = -22 }

[[step]]  # cmpxchg with CHECK_ONLY (§3.4 step 1)
memop = { op = "absolute-cmpxchg", gaddr = 0x1000, size = 8, flags = ["check-only"] }
expect = { ret = -22 }

[[step]]  # a NULL buffer on a write (§3.6 step 6)
memop = { op = "logical-write", size = 8, buf = "null" }
expect = { ret = -14, errno = "EFAULT" }

[[step]]  # a NULL old_addr on a cmpxchg (§3.4 step 3)
memop = { op = "absolute-cmpxchg", gaddr = 0x1000, size = 8, old-addr = "null" }
expect = { ret = -14, errno = "EFAULT" }
"#,
    );
    assert_eq!(r[1].data.as_ref().map(Vec::len), Some(65537));
    // Sizes above the largest possible copy are never allocated: `data` is null.
    assert_eq!(r[2].data, None);
    // A NULL old_addr means there is no old buffer to report.
    assert_eq!(r[13].old, None);
}

/// Logical and absolute accesses, LAP (§8.1), addressing (§6.1), and what `pgm` holds.
#[test]
fn memop_accesses() {
    let r = run_ok(
        r#"
[vm]
memory = "1M"

[[step]]
memop = { op = "absolute-write", gaddr = 0x3000, data = { hex = "01020304" } }
expect = { ret = 0 }

[[step]]
memop = { op = "absolute-read", gaddr = 0x3000, size = 4 }
expect = { ret = 0, data = { hex = "01020304" } }

[[step]]  # DAT off, prefix 0: logical = real = absolute (§5.2, §5.7)
memop = { op = "logical-read", gaddr = 0x3000, size = 4 }
expect = { ret = 0, data = { hex = "01020304" } }

[[step]]  # absolute ops outside memory: PGM 5, no vCPU record (§6.1)
memop = { op = "absolute-read", gaddr = 0x100000, size = 8 }
expect = { ret = 5, data = { hex = "0000000000000000" } }

[[step]]  # LAP on (CR0 bit 35)
set = { cr = { 0 = "0x100000E0" } }

[[step]]  # TEID = 0 | store 0x400 | bit 56 0x80 = 0x480 (§9.3)
memop = { op = "logical-write", gaddr = 0x100, data = { hex = "ff" } }
expect = { ret = 4, pgm = { code = 4, teid = "0x480", exc-access-id = 0, op-access-id = 0 } }

[[step]]  # LAP is not honoured by absolute ops (§8.6)
memop = { op = "absolute-write", gaddr = 0x100, data = { hex = "ff" } }
expect = { ret = 0 }

[[step]]
check = { at = 0x100, hex = "ff" }
"#,
    );
    assert_eq!(r[3].pgm, None);
    assert_eq!(r[5].pgm.map(|p| p.teid.0), Some(0x480));
}

/// §7: cmpxchg outcomes and what `old` becomes.
#[test]
fn memop_cmpxchg() {
    run_ok(
        r#"
[vm]
memory = "1M"

[[vm.key]]
at = 0x5000
byte = "0x98"        # ACC 9, F 1

[[step]]  # key 2 may not fetch: PGM 4 and `old` becomes zeros (§7, §11 item 17)
memop = { op = "absolute-cmpxchg", gaddr = 0x5000, old = { hex = "1111111111111111" }, data = { hex = "ffffffffffffffff" }, key = 2, flags = ["skey-protection"] }
expect = { ret = 4, old = { hex = "0000000000000000" } }

[[step]]  # key 9 matches: compare unequal, `old` receives memory (zeros), ret 0
memop = { op = "absolute-cmpxchg", gaddr = 0x5000, old = { hex = "1111111111111111" }, data = { hex = "ffffffffffffffff" }, key = 9, flags = ["skey-protection"] }
expect = { ret = 0, old = { hex = "0000000000000000" } }

[[step]]  # equal: exchanged, `old` unchanged
memop = { op = "absolute-cmpxchg", gaddr = 0x5000, size = 2, data = { hex = "abcd" } }
expect = { ret = 0, old = { hex = "0000" } }

[[step]]
check = { at = 0x5000, hex = "abcd 0000" }
"#,
    );
}

#[test]
fn vm_ops_carry_no_pgm_record() {
    let r = run_all(
        r#"
[vm]
memory = "64K"

[[step]]
memop = { op = "absolute-read", gaddr = 0x100000, size = 8 }
expect = { pgm = {} }
"#,
    );
    // `pgm = {}` asks for a record; a vm op leaves none (scenario-format.md Results).
    assert!(!r[0].pass);
    assert_eq!(r[0].failed[0].field, "pgm");
    assert_eq!(r[0].failed[0].actual, serde_json::Value::Null);
}

/// §3.8: SIDA ops on protected and non-protected vCPUs; the sida-offset overlay.
#[test]
fn memop_sida() {
    run_ok(
        r#"
[vm]
memory = "64K"

[cpu]
protected = true
sida = { hex = "0102" }

[[step]]
memop = { op = "sida-read", size = 2 }
expect = { ret = 0, data = { hex = "0102" } }

[[step]]
memop = { op = "sida-write", sida-offset = 0x10, data = { hex = "aabb" } }
expect = { ret = 0 }

[[step]]
memop = { op = "sida-read", sida-offset = 0x10, size = 2 }
expect = { ret = 0, data = { hex = "aabb" } }

[[step]]  # beyond sida_size 4096 (§3.8 step 3)
memop = { op = "sida-read", sida-offset = 0xfff, size = 2 }
expect = { ret = -7 }

[[step]]  # size + offset overflows u32 (§3.8 step 2)
memop = { op = "sida-read", sida-offset = "0xffffffff", size = 2 }
expect = { ret = -22 }

[[step]]  # flags must be 0 (§3.8 step 1)
memop = { op = "sida-read", size = 2, flags = ["check-only"] }
expect = { ret = -22 }

[[step]]  # logical ops on a protected vCPU (§3.6 step 3)
memop = { op = "logical-read", size = 8 }
expect = { ret = -22 }

[[step]]  # ar 0x00 / key 0x10 overlay sida_offset 0x00100000 > 4096 (§2.2)
memop = { op = "sida-read", size = 2, ar = 0, key = 0x10 }
expect = { ret = -7 }
"#,
    );
    // The selftest's case: SIDA on a non-protected vCPU is -EINVAL.
    run_ok(
        r#"
[vm]
memory = "64K"

[[step]]
memop = { op = "sida-read", sida-offset = 0x1c0, size = 8 }
expect = { ret = -22 }

[[step]]  # size + offset > 4096 is checked first: -E2BIG (§3.8 step 3)
memop = { op = "sida-read", sida-offset = 0x1000, size = 8 }
expect = { ret = -7 }
"#,
    );
    // A protected VM rejects vm ops before looking at the op (§3.1).
    run_ok(
        r#"
[vm]
memory = "64K"
protected = true

[[step]]
memop = { op = "absolute-read", size = 8 }
expect = { ret = -22 }

[[step]]
memop = { op = 99, ioctl = "vm", size = 8 }
expect = { ret = -22 }
"#,
    );
}

const PROFILE_CASE: &str = r#"
profile = "linux-6.3"

[vm]
memory = "1M"

# CHECK_ONLY, key 0, first page in memory, second outside (§6.4): 0 before the rewrite.
[[step]]
memop = { op = "absolute-read", gaddr = 0xff000, size = 0x2000, flags = ["check-only"] }
expect = { ret = 0 }
"#;

/// §6.4: the profile switch, from the file and overridden.
#[test]
fn profiles_differ_where_6_4_says() {
    run_ok(PROFILE_CASE);
    let l = load(PROFILE_CASE);
    let r = run::run(&l.scenario, Some(Profile::Linux70)).expect("builds");
    assert_eq!(r[0].ret, Some(5));
    assert!(!r[0].pass);
    let r = run::run(&l.scenario, Some(Profile::Linux63)).expect("builds");
    assert!(r[0].pass);
}

// ---------------------------------------------------------------------------------------
// Other step kinds

/// `write`, `check`, `check-key` and `set` (with `space:NAME`).
#[test]
fn write_check_set() {
    let r = run_all(
        r#"
[vm]
memory = "1M"

[[space]]
name = "s"
type = "segment"
tables = 0x80000
map = [{ virt = 0x10000, abs = 0x30000, size = "4K", page = "4K" }]

[[step]]
write = { at = 0x30000, hex = "5a5a" }
expect = { pending = false }

[[step]]
check = { at = 0x30000, hex = "5a5a" }

[[step]]  # mismatch: reported as field "memory"
check = { at = 0x30000, hex = "5a5b" }

[[step]]  # write does not set R/C (scenario-format.md `write`)
check-key = { at = 0x30000, byte = 0 }

[[step]]  # mismatch: reported as field "key"
check-key = { at = 0x30000, byte = 2 }

[[step]]
set = { psw = { dat = true }, cr = { 1 = "space:s" }, ar = { 3 = 7 }, prefix = 0x2000 }

[[step]]  # segment ASCE at 0x80000, DT 0, TL 3 → virtual 0x10000 → 0x30000
translate = { gaddr = 0x10000, access = "fetch" }
expect = { ret = 0, abs = "0x30000" }

[[step]]
memop = { op = "logical-read", gaddr = 0x10000, size = 2 }
expect = { data = { hex = "5a5a" } }
"#,
    );
    assert!(r[0].pass && r[1].pass && r[3].pass && r[5].pass && r[6].pass && r[7].pass);
    assert!(!r[2].pass);
    assert_eq!(r[2].failed[0].field, "memory");
    assert_eq!(r[2].failed[0].expected, "5a5b");
    assert_eq!(r[2].failed[0].actual, "5a5a");
    assert!(!r[4].pass);
    assert_eq!(r[4].failed[0].field, "key");
    assert_eq!(r[4].key, Some(0));
    let mut l = load(
        r#"
[vm]
memory = "1M"

[[space]]
name = "s"
type = "segment"
tables = 0x80000

[[step]]
set = { psw = "0x0400000180000000", cr = { 1 = "space:s", 7 = 5 }, ar = { 3 = 7 }, prefix = 0x2345 }
"#,
    );
    let asce = l.machine.asce("s").expect("space s");
    assert_eq!(asce.0, 0x80003); // origin | DT 0 | TL 3
    l.machine.run_all(&l.scenario);
    let v = &l.machine.vcpu;
    assert_eq!(
        (v.psw.mask, v.cr[1], v.cr[7], v.ar[3], v.prefix),
        (0x0400_0001_8000_0000, 0x80003, 5, 7, 0x2345)
    );
    assert_eq!(v.cr[0], 0xE0, "registers not named keep their values");
}

/// `set-key`, `keyop`, `get-skeys` (§10.1, §13.1).
#[test]
fn storage_key_steps() {
    run_ok(
        r#"
[vm]
memory = "1M"

[[step]]  # keys not in use yet: KVM_S390_GET_SKEYS_NONE
get-skeys = { at = 0, count = 1 }
expect = { ret = 1 }

[[step]]  # SSKE returns the old key
keyop = { op = "sske", at = 0x2000, key = "0x36" }
expect = { ret = 0, key = 0 }

[[step]]
keyop = { op = "iske", at = 0x2abc }
expect = { ret = 0, key = "0x36" }

[[step]]  # RRBE: old R and C (0x06), R cleared
keyop = { op = "rrbe", at = 0x2000 }
expect = { ret = 0, key = 6 }

[[step]]
check-key = { at = 0x2000, byte = "0x32" }

[[step]]  # a frame outside memory: -EFAULT (§13.1)
keyop = { op = "iske", at = 0x100000 }
expect = { ret = -14, errno = "EFAULT" }

[[step]]  # KEYOP does not put keys in use (§13.1)
get-skeys = { at = 0, count = 1 }
expect = { ret = 1 }

[[step]]  # SET_SKEYS puts keys in use, resetting every key first
set-key = { at = 0x1000, byte = "0x18" }
expect = { ret = 0 }

[[step]]
get-skeys = { at = 0x1000, count = 2 }
expect = { ret = 0, keys = { hex = "18 00" } }

[[step]]  # the reserved bit 7 (0x01): -EINVAL
set-key = { at = 0x1000, byte = "0x19" }
expect = { ret = -22 }

[[step]]  # a range running out of memory: -EFAULT, earlier frames set
set-key = { range = [0xff000, 0x101000], acc = 2 }
expect = { ret = -14 }

[[step]]
check-key = { at = 0xff000, byte = "0x20" }

[[step]]
get-skeys = { at = 0xff000, count = 2 }
expect = { ret = -14 }

[[step]]
get-skeys = { at = 0, count = 0 }
expect = { ret = -22 }
"#,
    );
}

/// `deliver`: nothing pending, and a lowcore outside memory (memop::inject docs).
#[test]
fn deliver_steps() {
    run_ok(
        r#"
[vm]
memory = "1M"

[cpu]
prefix = 0x200000     # the lowcore is not memory

[[step]]
deliver = true
expect = { delivered = false, pending = false }

[[step]]  # real 0x100 → absolute 0x200100: addressing (§5.4), injected (§3.11)
memop = { op = "logical-read", gaddr = 0x100, size = 1, flags = ["inject-exception"] }
expect = { ret = 5, pgm = { code = 5, teid = 0, exc-access-id = 0 }, pending = true }

[[step]]  # consumed, but KVM_RUN would fail: ret -EFAULT
deliver = true
expect = { delivered = true, ret = -14, pending = false }
"#,
    );
}

/// `translate` (§5, guest_translate_address_with_key).
#[test]
fn translate_steps() {
    let r = run_ok(
        r#"
[vm]
memory = "1M"

[[vm.key]]
at = 0x30000
byte = "0x38"         # ACC 3, F 1

[[space]]
name = "s"
type = "segment"
tables = 0x80000
map = [{ virt = 0x10000, abs = 0x30000, size = "4K", page = "4K" }]

[cpu]
psw = { dat = true, as = "ar" }
cr = { 1 = "space:s" }

[[step]]
translate = { gaddr = 0x10010, access = "fetch" }
expect = { ret = 0, abs = "0x30010" }

[[step]]  # invalid PTE: 0x11, TEID 0x11000 | store 0x400 | AS 01 = 0x11401
translate = { gaddr = 0x11000, access = "store" }
expect = { ret = 0x11, teid = "0x11401", pending = false }

[[step]]  # key 5 fetch from F=1 ACC 3: key-controlled, 0x10000 | fetch 0x800 | 0x8 | 1
translate = { gaddr = 0x10000, access = "fetch", key = 5 }
expect = { ret = 4, teid = "0x10809" }

[[step]]  # a memop would reject key 16 (§3.2)
translate = { gaddr = 0x10000, access = "fetch", key = 16 }
expect = { ret = -22 }

[[step]]  # AR mode with ar 16: -EINVAL from ar_translation (§5.3 step 1)
translate = { gaddr = 0x10000, access = "fetch", ar = 16 }
expect = { ret = -22 }
"#,
    );
    assert_eq!(r[0].pgm, None);
    assert_eq!(r[1].pgm.map(|p| p.code), Some(0x11));
}

/// `tprot` (§16): each condition code and the injected cases.
#[test]
fn tprot_steps() {
    run_ok(
        r#"
[vm]
memory = "1M"

[[vm.key]]
at = 0x3000
byte = "0x30"         # ACC 3, F 0

[[vm.key]]
at = 0x4000
byte = "0x38"         # ACC 3, F 1

[[space]]
name = "s"
type = "segment"
tables = 0x80000
map = [{ virt = 0, abs = 0, size = "64K", page = "4K" }]

[[step]]  # store refused (key 5 ≠ ACC 3), fetch allowed (F 0)
tprot = { gaddr = 0x3000, key = 5 }
expect = { cc = 1, pending = false }

[[step]]  # fetch-protected too
tprot = { gaddr = 0x4000, key = 5 }
expect = { cc = 2 }

[[step]]
tprot = { gaddr = 0x3000, key = 3 }
expect = { cc = 0 }

[[step]]  # addressing is injected instead of a cc (§16 step 6)
tprot = { gaddr = 0x100000 }
expect = { ret = 5, code = 5, pending = true }

[[step]]
deliver = true
expect = { delivered = true }

[[step]]
set = { psw = { dat = true }, cr = { 1 = "space:s" } }

[[step]]  # page 0x20 invalid: translation not available (§16 step 7)
tprot = { gaddr = 0x20000 }
expect = { cc = 3, pending = false }

[[step]]
set = { psw = { dat = true, problem = true } }

[[step]]  # privileged operation (§16 step 1)
tprot = { gaddr = 0 }
expect = { ret = 2, code = 2, pending = true }
"#,
    );
}

// ---------------------------------------------------------------------------------------
// Expectations and JSON

#[test]
fn failing_expectations_name_fields_with_expected_and_actual() {
    let r = run_all(
        r#"
[vm]
memory = "64K"

[[step]]  # DAT off, real 0x10000 is outside memory: PGM 5
memop = { op = "logical-read", gaddr = 0x10000, size = 2 }
expect = { ret = 0, errno = "EINVAL", code = 4, teid = 1, exc-access-id = 1, data = { hex = "0102" }, pending = true, old = { hex = "00" } }

[[step]]
tprot = { gaddr = 0 }
expect = { cc = 2, abs = 0, key = 1, keys = { hex = "00" }, delivered = true }
"#,
    );
    let fields: Vec<&str> = r[0].failed.iter().map(|m| m.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "ret",
            "errno",
            "pgm.code",
            "pgm.teid",
            "pgm.exc_access_id",
            "data",
            "old",
            "pending"
        ]
    );
    let m = |i: usize| (&r[0].failed[i].expected, &r[0].failed[i].actual);
    assert_eq!(m(0), (&serde_json::json!(0), &serde_json::json!(5)));
    assert_eq!(
        m(1),
        (&serde_json::json!("EINVAL"), &serde_json::Value::Null)
    );
    assert_eq!(m(2), (&serde_json::json!(4), &serde_json::json!(5)));
    assert_eq!(
        m(3),
        (
            &serde_json::json!("0x0000000000000001"),
            &serde_json::json!("0x0000000000000000")
        )
    );
    assert_eq!(
        m(5),
        (&serde_json::json!("0102"), &serde_json::json!("0000"))
    );
    assert_eq!(m(6), (&serde_json::json!("00"), &serde_json::Value::Null));
    assert_eq!(m(7), (&serde_json::json!(true), &serde_json::json!(false)));
    let fields: Vec<&str> = r[1].failed.iter().map(|m| m.field.as_str()).collect();
    assert_eq!(fields, ["keys", "abs", "cc", "key", "delivered"]);
}

#[test]
fn null_expectations_from_json() {
    let text = r#"{
  "vm": { "memory": "64K" },
  "step": [
    { "memop": { "op": "logical-read", "gaddr": "0x1000", "size": 2 },
      "expect": { "ret": 0, "pgm": null, "errno": null, "old": null } },
    { "tprot": { "gaddr": 0 }, "expect": { "ret": null, "cc": 0 } },
    { "memop": { "op": "logical-read", "gaddr": "0x10000", "size": 2 },
      "expect": { "pgm": null } }
  ]
}"#;
    let mut l = run::load_str(text, Format::Json, "t.json").unwrap_or_else(|e| panic!("{e}"));
    let r = l.machine.run_all(&l.scenario);
    assert!(
        r[0].pass && r[1].pass,
        "{:?} {:?}",
        r[0].failed,
        r[1].failed
    );
    assert!(!r[2].pass);
    assert_eq!(r[2].failed[0].field, "pgm");
    assert_eq!(r[2].failed[0].actual["code"], 5);
}

#[test]
fn json_lines_have_the_fields_of_the_format() {
    let r = run_all(
        r#"
[vm]
memory = "64K"

[[step]]
memop = { op = "logical-read", gaddr = 0x10000, size = 2 }
expect = { ret = 5 }

[[step]]
tprot = { gaddr = 0 }

[[step]]
check = { at = 0, hex = "01" }

[[step]]
get-skeys = { at = 0, count = 1 }

[[step]]
deliver = true

[[step]]
translate = { gaddr = 0x20, access = "store" }
"#,
    );
    let line = json_line(&r[0], None);
    // The format's example: fields in this order.
    let order = [
        "\"step\"",
        "\"kind\"",
        "\"ret\"",
        "\"errno\"",
        "\"pgm\"",
        "\"data\"",
        "\"old\"",
        "\"pending\"",
        "\"pass\"",
    ];
    let pos: Vec<usize> = order
        .iter()
        .map(|k| line.find(k).unwrap_or_else(|| panic!("{k} in {line}")))
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{line}");
    let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
    assert_eq!(
        v,
        serde_json::json!({"step": 1, "kind": "memop", "ret": 5, "errno": null,
            "pgm": {"code": 5, "teid": "0x0000000000000000", "exc_access_id": 0, "op_access_id": 0},
            "data": "0000", "old": null, "pending": false, "pass": true})
    );
    let v: serde_json::Value = serde_json::from_str(&json_line(&r[1], None)).expect("JSON");
    assert_eq!(
        v,
        serde_json::json!({"step": 2, "kind": "tprot", "ret": null, "errno": null, "pgm": null,
            "cc": 0, "pending": false, "pass": true})
    );
    let v: serde_json::Value =
        serde_json::from_str(&json_line(&r[2], Some("f.toml"))).expect("JSON");
    assert_eq!(
        v,
        serde_json::json!({"file": "f.toml", "step": 3, "kind": "check", "ret": null, "errno": null,
            "pending": false, "pass": false,
            "failed": [{"field": "memory", "expected": "01", "actual": "00"}]})
    );
    let v: serde_json::Value = serde_json::from_str(&json_line(&r[3], None)).expect("JSON");
    assert_eq!(v["keys"], serde_json::Value::Null);
    assert_eq!(v["ret"], 1);
    let v: serde_json::Value = serde_json::from_str(&json_line(&r[4], None)).expect("JSON");
    assert_eq!(v["delivered"], false);
    let v: serde_json::Value = serde_json::from_str(&json_line(&r[5], None)).expect("JSON");
    assert_eq!(v["abs"], "0x0000000000000020");
    assert_eq!(v["pgm"], serde_json::Value::Null);
}

// ---------------------------------------------------------------------------------------
// Set-up errors

#[test]
fn setup_errors_name_file_place_and_problem() {
    let e = setup_error(
        r#"
[vm]
memory = "64K"

[[space]]
name = "a"
type = "region-first"
tables = 0x8000
map = [{ virt = 0, abs = 0, size = "4K", page = "4K" }]
"#,
    );
    assert_has(
        &e,
        &[
            "test.toml:9:",
            "space#1.map#1",
            "does not lie in guest memory",
        ],
    );

    let e = setup_error(
        r#"
[vm]
memory = "1M"

[[space]]
name = "a"
type = "region-third"
tables = 0x80000
map = [
  { virt = 0, abs = 0, size = "1M", page = "1M" },
  { virt = 0x1000, abs = 0, size = "4K", page = "4K" },
]
"#,
    );
    assert_has(
        &e,
        &[
            "test.toml:11:",
            "space#1.map#2",
            "already mapped by a large frame",
        ],
    );

    let e = setup_error(
        r#"
[vm]
memory = "1M"

[[space]]
name = "a"
type = "segment"
tables = 0x80000

[[space]]
name = "b"
type = "segment"
tables = 0x82000
"#,
    );
    assert_has(
        &e,
        &["test.toml:13:", "space#2.tables", "overlaps", "space \"a\""],
    );

    let e = setup_error(
        r#"
[vm]
memory = "1M"

[[vm.data]]
at = 0x80ff8
hex = "00"

[[space]]
name = "a"
type = "segment"
tables = 0x80000
"#,
    );
    assert_has(
        &e,
        &[
            "test.toml:5:",
            "vm.data#1",
            "overlap the DAT table",
            "space \"a\"",
        ],
    );

    let e = setup_error(
        r#"
[vm]
memory = "1M"

[[space]]
name = "a"
type = "segment"
tables = 0x80000

[[space.edit]]
virt = 0x1000
level = "page"
set = "0x400"
"#,
    );
    assert_has(
        &e,
        &[
            "test.toml:10:",
            "space#1.edit#1",
            "does not reach the page level",
            "invalid",
        ],
    );

    let e = setup_error(
        r#"
[vm]
memory = "1M"

[[step]]
write = { at = 0xffffe, hex = "010203" }
"#,
    );
    assert_has(
        &e,
        &["test.toml:6:", "step#1.write", "not lie entirely in memory"],
    );

    let e = setup_error(
        r#"
[vm]
memory = "1M"

[[step]]
check-key = { at = 0x100000, byte = 0 }
"#,
    );
    assert_has(&e, &["test.toml:6:", "step#1.check-key"]);

    let e = setup_error(
        r#"
[vm]
memory = [{ start = 0, size = "64K" }, { start = "1M", size = "64K" }]

[[vm.key]]
range = [0, "1M"]
byte = "0x10"
"#,
    );
    assert_has(&e, &["test.toml:5:", "vm.key#1", "not all in memory"]);

    let e = setup_error(
        r#"
[vm]
memory = "64K"

[[vm.key]]
at = 0
byte = "0x11"
"#,
    );
    assert_has(&e, &["test.toml:5:", "vm.key#1", "reserved bit 7"]);
}

#[test]
fn load_reports_unreadable_and_unknown_files() {
    let e = run::load(std::path::Path::new("/nonexistent/x.toml")).expect_err("missing file");
    assert_has(&e.to_string(), &["/nonexistent/x.toml", "cannot read"]);
    let e = run::load(std::path::Path::new("x.yaml")).expect_err("unknown type");
    assert_has(&e.to_string(), &["x.yaml", ".toml or .json"]);
}

/// Keys in a range are applied to every frame; `storage-keys = false` with keys keeps
/// keys "not in use" but applies them (documented interpretation).
#[test]
fn vm_keys() {
    run_ok(
        r#"
[vm]
memory = "64K"

[[vm.key]]
range = [0x1800, 0x3001]
acc = 4
f = true

[[step]]
get-skeys = { at = 0, count = 5 }
expect = { ret = 0, keys = { hex = "00 48 48 48 00" } }
"#,
    );
    run_ok(
        r#"
[vm]
memory = "64K"
storage-keys = false

[[vm.key]]
at = 0x1000
byte = "0x40"

[[step]]
get-skeys = { at = 0, count = 1 }
expect = { ret = 1 }

[[step]]
check-key = { at = 0x1000, byte = "0x40" }
"#,
    );
}

// ---------------------------------------------------------------------------------------
// Robustness

const FUZZ_GUEST: &str = r#"
[vm]
memory = [{ start = 0, size = "256K" }, { start = "1M", size = "64K" }]

[[vm.key]]
range = [0x10000, 0x14000]
byte = "0x98"

[[space]]
name = "s"
type = "region-second"
tables = 0x20000
map = [{ virt = 0x10000, abs = 0x10000, size = "16K", page = "4K" }]

[cpu]
psw = { dat = true }
cr = { 1 = "space:s" }
"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any memop struct runs without a panic, and the result fields follow the rules:
    /// `pgm` only after a positive vCPU return, `data` only for reads with a buffer.
    #[test]
    fn any_memop_runs(
        op in 0u32..9,
        vm_fd in any::<bool>(),
        gaddr in prop_oneof![any::<u64>(), 0u64..0x120000, Just(u64::MAX - 3)],
        size in prop_oneof![0u32..40, 4090u32..4200, 65530u32..65540, any::<u32>()],
        flags in prop_oneof![0u64..8, any::<u64>()],
        key in any::<u8>(),
        ar in 0u8..20,
        null_buf in any::<bool>(),
    ) {
        let text = format!(
            "{FUZZ_GUEST}\n[[step]]\nmemop = {{ op = {op}, ioctl = \"{}\", gaddr = \"{gaddr:#x}\", size = {size}, flags = \"{flags:#x}\", key = {key}, ar = {ar}, buf = \"{}\" }}\n",
            if vm_fd { "vm" } else { "vcpu" },
            if null_buf { "null" } else { "valid" },
        );
        let mut l = run::load_str(&text, Format::Toml, "fuzz.toml").expect("valid scenario");
        let r = l.machine.run_all(&l.scenario).remove(0);
        let ret = r.ret.expect("memops return");
        prop_assert!(ret <= 0xffff);
        prop_assert_eq!(r.pgm.is_some(), ret > 0 && !vm_fd);
        let is_read = matches!(op, 0 | 2 | 4);
        if r.data.is_some() {
            prop_assert!(is_read && !null_buf);
            prop_assert_eq!(r.data.as_ref().map(Vec::len), Some(size as usize));
        }
        prop_assert!(r.pass);
    }
}

/// The parser output of a scenario and the machine agree on the ASCE of a space.
#[test]
fn asce_of_a_space_is_origin_flags_dt_tl() {
    let text = r#"
[vm]
memory = "1M"

[[space]]
name = "p"
type = "region-second"
tables = 0x40000
tl = 1
private = true
"#;
    let s = parse_str(text, Format::Toml, "t.toml").expect("parses");
    let m = run::Machine::build(&s).expect("builds");
    // origin 0x40000 | P 0x100 | DT 2 << 2 | TL 1
    assert_eq!(m.asce("p").map(|a| a.0), Some(0x40109));
}

// ---------------------------------------------------------------------------------------
// The translate explanation agrees with the engine

fn example(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// On every example machine, after any number of its steps, the step-by-step account
    /// ends where the engine ends (the explanation prints a note when they disagree).
    #[test]
    fn explanation_agrees_with_the_engine(
        file in prop_oneof![
            Just("quickstart.toml"), Just("edat.toml"), Just("ar-mode.toml"), Just("terminating-store.toml")
        ],
        after in 0usize..25,
        gaddr in prop_oneof![
            Just(0x10000u64), Just(0x11100), Just(0x14000), Just(0x101234), Just(0x300000),
            Just(0x80000010), Just(0x20ffc), Just(0x100), Just(0x1100), Just(u64::MAX),
            Just(1u64 << 42), Just(1u64 << 53), any::<u64>(), 0u64..0x200000,
        ],
        store in any::<bool>(),
        ar in 0u8..6,
        key in 0u8..16,
        amode in 0u64..4,
    ) {
        let mut l = run::load(&example(file)).expect("example loads");
        let n = after.min(l.scenario.steps.len());
        for (i, s) in l.scenario.steps.iter().take(n).enumerate() {
            l.machine.run_step(i + 1, s);
        }
        // Vary the addressing mode too (EA/BA, including the invalid EA=1 BA=0).
        let m = &mut l.machine;
        m.vcpu.psw.mask = (m.vcpu.psw.mask & !0x1_8000_0000) | (amode << 31);
        let mode = if store {
            s390_gaccess::exception::AccessMode::Store
        } else {
            s390_gaccess::exception::AccessMode::Fetch
        };
        let key = s390_gaccess::keys::AccessKey::new(key).expect("0..15");
        let text = s390_gaccess::scenario::explain::explain(
            &m.vm, &m.vcpu, &m.spaces, gaddr, ar, mode, key,
        );
        prop_assert!(!text.contains("note:"), "{}", text);
        prop_assert!(text.contains("\nResult\n"));
    }
}
