//! Integration tests of the scenario-file reader: a realistic scenario in TOML and in JSON
//! reads to the same model; errors carry file:line:col; value forms; robustness.

use proptest::prelude::*;
use s390_gaccess::scenario::model::{facility, memop_flags};
use s390_gaccess::scenario::value::{XorShiftStar, random_bytes};
use s390_gaccess::scenario::{
    AccessMode, CrValue, DataSpec, DesignationType, EntryChange, Format, FrameSelection, Ioctl,
    KeySetting, KeyopOp, Level, MemOpCode, MemOpKind, PageSize, Profile, Scenario, ScenarioError,
    StepKind, UserBuf, parse_str,
};

const TOML: &str = r#"# Key protection and friends.
name = "realistic"
profile = "linux-6.3"

[vm]
memory = "1M"
facilities = ["edat1", "edat2", 130, "0x83"]
storage-keys = true

[[vm.key]]
range = ["0x10000", "0x12000"]
byte = "0x98"

[[vm.key]]
at = 0x20000
acc = 1
f = true

[[vm.data]]
at = 0x10000
fill = "0xaa"
len = "8K"

[[vm.data]]
at = 0x30000
random = 42
len = 16

[[space]]
name = "main"
type = "region-first"
tables = "0x80000"
map = [
  { virt = 0, abs = 0, size = "512K", page = "4K" },
]

[[space.edit]]
virt = 0x1000
level = "page"
set = "0x400"

[[space]]
name = "big"
type = "region-third"
tables = 0xC0000
tl = 1
private = true

[[space.map]]
virt = "1M"
abs = 0
size = "1M"
page = "1M"
protect = true

[[space.edit]]
virt = "1M"
level = "segment"
value = "0xffff_ffff_ffff_f000"

[cpu]
psw = { dat = true, key = 9, as = "ar", amode = 64 }
prefix = 0x2000
sida = { hex = "0102" }

[cpu.cr]
0 = "0xE0"
1 = "space:main"
7 = "space:big"

[cpu.ar]
1 = 0x100

[[step]]
memop = { op = "logical-read", gaddr = "0x10000", size = 8, flags = ["skey-protection", "check-only"], key = 9 }
expect = { ret = 0, data = { fill = "0xaa", len = 8 }, pending = false }

[[step]]
[step.memop]
op = "absolute-cmpxchg"
gaddr = 0x30000
data = { u64 = ["0xffff_ffff_ffff_ffff"] }
old = { hex = "0000 0000 0000 0000" }
old-addr = "null"
[step.expect]
ret = 0
old = { random = 42, len = 8 }

[[step]]
memop = { op = 7, ioctl = "vm", size = "4K", buf = "null" }
expect = { ret = -22, errno = "EINVAL" }

[[step]]
memop = { op = "sida-read", sida-offset = "0x10", size = 4 }

[[step]]
write = { at = "0x1000", u64 = ["0x0000000000002400"] }

[[step]]
set = { psw = "0x0400000180000000", cr = { 13 = "space:main" }, ar = { 2 = 5 }, prefix = "8K" }

[[step]]
set-key = { range = [0, "0x2000"], acc = 3, c = true }

[[step]]
keyop = { op = "sske", at = 0x20000, key = 0x10 }
expect = { key = 0x18 }

[[step]]
get-skeys = { at = 0x10000, count = 2 }
expect = { keys = { hex = "9898" }, ret = 0 }

[[step]]
translate = { gaddr = 0x1000, access = "store", ar = 1 }
expect = { ret = 0x11, pgm = { code = 0x11 }, teid = "0x0000000000001800" }

[[step]]
tprot = { gaddr = 0x10000, key = 1 }
expect = { cc = 1 }

[[step]]
deliver = true
expect = { delivered = true, pending = false }

[[step]]
check = { at = 0x10000, hex = "aaaa" }

[[step]]
check-key = { at = 0x10000, byte = 0x9e }
"#;

const JSON: &str = r#"{
  "name": "realistic",
  "profile": "linux-6.3",
  "vm": {
    "memory": "1M",
    "facilities": ["edat1", "edat2", 130, "0x83"],
    "storage-keys": true,
    "key": [
      { "range": ["0x10000", "0x12000"], "byte": "0x98" },
      { "at": 131072, "acc": 1, "f": true }
    ],
    "data": [
      { "at": 65536, "fill": "0xaa", "len": "8K" },
      { "at": "0x30000", "random": 42, "len": 16 }
    ]
  },
  "space": [
    {
      "name": "main", "type": "region-first", "tables": "0x80000",
      "map": [ { "virt": 0, "abs": 0, "size": "512K", "page": "4K" } ],
      "edit": [ { "virt": "0x1000", "level": "page", "set": "0x400" } ]
    },
    {
      "name": "big", "type": "region-third", "tables": "0xC0000", "tl": 1, "private": true,
      "map": [ { "virt": "1M", "abs": 0, "size": "1M", "page": "1M", "protect": true } ],
      "edit": [ { "virt": "1M", "level": "segment", "value": "0xffff_ffff_ffff_f000" } ]
    }
  ],
  "cpu": {
    "psw": { "dat": true, "key": 9, "as": "ar", "amode": 64 },
    "prefix": 8192,
    "sida": { "hex": "0102" },
    "cr": { "0": "0xE0", "1": "space:main", "7": "space:big" },
    "ar": { "1": 256 }
  },
  "step": [
    { "memop": { "op": "logical-read", "gaddr": "0x10000", "size": 8,
                 "flags": ["skey-protection", "check-only"], "key": 9 },
      "expect": { "ret": 0, "data": { "fill": "0xaa", "len": 8 }, "pending": false } },
    { "memop": { "op": "absolute-cmpxchg", "gaddr": "0x30000",
                 "data": { "u64": ["0xffff_ffff_ffff_ffff"] },
                 "old": { "hex": "0000 0000 0000 0000" }, "old-addr": "null" },
      "expect": { "ret": 0, "old": { "random": 42, "len": 8 } } },
    { "memop": { "op": 7, "ioctl": "vm", "size": "4K", "buf": "null" },
      "expect": { "ret": -22, "errno": "EINVAL" } },
    { "memop": { "op": "sida-read", "sida-offset": "0x10", "size": 4 } },
    { "write": { "at": "0x1000", "u64": ["0x0000000000002400"] } },
    { "set": { "psw": "0x0400000180000000", "cr": { "13": "space:main" }, "ar": { "2": 5 },
               "prefix": "8K" } },
    { "set-key": { "range": [0, "0x2000"], "acc": 3, "c": true } },
    { "keyop": { "op": "sske", "at": "0x20000", "key": 16 }, "expect": { "key": 24 } },
    { "get-skeys": { "at": "0x10000", "count": 2 },
      "expect": { "keys": { "hex": "9898" }, "ret": 0 } },
    { "translate": { "gaddr": 4096, "access": "store", "ar": 1 },
      "expect": { "ret": 17, "pgm": { "code": 17 }, "teid": "0x0000000000001800" } },
    { "tprot": { "gaddr": "0x10000", "key": 1 }, "expect": { "cc": 1 } },
    { "deliver": true, "expect": { "delivered": true, "pending": false } },
    { "check": { "at": "0x10000", "hex": "aaaa" } },
    { "check-key": { "at": "0x10000", "byte": "0x9e" } }
  ]
}
"#;

fn without_lines(mut s: Scenario) -> Scenario {
    for step in &mut s.steps {
        step.line = None;
    }
    s
}

#[test]
fn toml_and_json_read_to_the_same_model() {
    let t = parse_str(TOML, Format::Toml, "realistic.toml").expect("toml parses");
    let j = parse_str(JSON, Format::Json, "realistic.json").expect("json parses");
    assert_eq!(without_lines(t.clone()), without_lines(j.clone()));

    // Step lines: the [[step]] headers in TOML, the opening braces in JSON.
    let headers: Vec<usize> = TOML
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == "[[step]]")
        .map(|(i, _)| i + 1)
        .collect();
    let lines: Vec<usize> = t.steps.iter().map(|s| s.line.unwrap()).collect();
    assert_eq!(lines, headers);
    let line_of = |needle: &str| JSON.lines().position(|l| l.contains(needle)).map(|i| i + 1);
    assert_eq!(
        j.steps[0].line,
        line_of("{ \"memop\": { \"op\": \"logical-read\"")
    );
    assert_eq!(j.steps[13].line, line_of("{ \"check-key\""));
    assert!(j.steps.iter().all(|s| s.line.is_some()));
}

#[test]
fn realistic_model_contents() {
    let s = parse_str(TOML, Format::Toml, "dir/realistic.toml").unwrap();
    assert_eq!(s.name, "realistic");
    assert_eq!(s.profile, Profile::Linux63);
    assert_eq!(s.vm.memslots.len(), 1);
    assert_eq!(s.vm.memslots[0].size, 1 << 20);
    assert_eq!(s.vm.facilities, vec![8, 78, 130, 131]);
    assert!(s.vm.storage_keys);
    assert_eq!(
        s.vm.keys,
        vec![
            KeySetting {
                frames: FrameSelection::Range {
                    start: 0x10000,
                    end: 0x12000
                },
                byte: 0x98
            },
            KeySetting {
                frames: FrameSelection::At(0x20000),
                byte: 0x18
            },
        ]
    );
    assert_eq!(
        s.vm.data[0],
        DataSpec {
            at: 0x10000,
            bytes: vec![0xaa; 8192]
        }
    );
    assert_eq!(s.vm.data[1].bytes, random_bytes(42, 16).unwrap());

    let main = s.space("main").unwrap();
    assert_eq!(main.designation, DesignationType::RegionFirst);
    assert_eq!(main.tl, 3);
    assert_eq!(main.maps[0].page, PageSize::K4);
    assert_eq!(main.maps[0].size, 512 << 10);
    assert_eq!(main.edits[0].level, Level::Page);
    assert_eq!(
        main.edits[0].change,
        EntryChange::SetClear {
            set: 0x400,
            clear: 0
        }
    );
    let big = s.space("big").unwrap();
    assert_eq!(big.asce_low_bits(), 0x100 | 0x4 | 0x1);
    assert!(big.maps[0].protect);
    assert_eq!(
        big.edits[0].change,
        EntryChange::Value(0xffff_ffff_ffff_f000)
    );

    assert_eq!(s.cpu.psw_mask, 0x0490_4001_8000_0000);
    assert_eq!(s.cpu.prefix, 0x2000);
    assert_eq!(s.cpu.cr[0], CrValue::Raw(0xE0));
    assert_eq!(s.cpu.cr[1], CrValue::Space("main".into()));
    assert_eq!(s.cpu.cr[7], CrValue::Space("big".into()));
    assert_eq!(s.cpu.cr[2], CrValue::Raw(0));
    assert_eq!(s.cpu.ar[1], 0x100);
    assert_eq!(s.cpu.sida.len(), 4096);
    assert_eq!(&s.cpu.sida[..3], &[1, 2, 0]);
    assert!(!s.cpu_protected());

    assert_eq!(s.steps.len(), 14);
    let StepKind::Memop(m) = &s.steps[0].kind else {
        panic!("memop expected")
    };
    assert_eq!(m.op, MemOpCode::Named(MemOpKind::LogicalRead));
    assert_eq!(m.ioctl, Ioctl::Vcpu);
    assert_eq!(
        m.flags,
        memop_flags::SKEY_PROTECTION | memop_flags::CHECK_ONLY
    );
    assert_eq!((m.gaddr, m.size, m.key, m.ar), (0x10000, 8, 9, 0));
    let e = s.steps[0].expect.as_ref().unwrap();
    assert_eq!(e.ret, Some(Some(0)));
    assert_eq!(e.data, Some(Some(vec![0xaa; 8])));
    assert_eq!(e.pending, Some(false));
    assert_eq!(e.cc, None);

    let StepKind::Memop(m) = &s.steps[1].kind else {
        panic!()
    };
    assert_eq!(m.ioctl, Ioctl::Vm);
    assert_eq!(m.size, 8);
    assert_eq!(m.data, Some(vec![0xff; 8]));
    assert_eq!(m.old, Some(vec![0; 8]));
    assert_eq!(m.old_addr, UserBuf::Null);

    let StepKind::Memop(m) = &s.steps[2].kind else {
        panic!()
    };
    assert_eq!(m.op, MemOpCode::Raw(7));
    assert_eq!((m.ioctl, m.size, m.buf), (Ioctl::Vm, 4096, UserBuf::Null));
    assert_eq!(m.data, None);
    let e = s.steps[2].expect.as_ref().unwrap();
    assert_eq!(e.ret, Some(Some(-22)));
    assert_eq!(e.errno, Some(Some("EINVAL".into())));

    let StepKind::Memop(m) = &s.steps[3].kind else {
        panic!()
    };
    assert_eq!(m.sida_offset, Some(0x10));
    assert_eq!(m.effective_sida_offset(), 0x10);

    let StepKind::Set(set) = &s.steps[5].kind else {
        panic!()
    };
    assert_eq!(set.psw_mask, Some(0x0400_0001_8000_0000));
    assert_eq!(set.cr[13], Some(CrValue::Space("main".into())));
    assert_eq!(set.cr[0], None);
    assert_eq!(set.ar[2], Some(5));
    assert_eq!(set.prefix, Some(0x2000));

    let StepKind::SetKey(k) = &s.steps[6].kind else {
        panic!()
    };
    assert_eq!(k.byte, 0x32);
    let StepKind::Keyop(k) = &s.steps[7].kind else {
        panic!()
    };
    assert_eq!((k.op, k.at, k.key), (KeyopOp::Sske, 0x20000, 0x10));
    let StepKind::Translate(t) = &s.steps[9].kind else {
        panic!()
    };
    assert_eq!((t.access, t.ar, t.key), (AccessMode::Store, 1, 0));
    let pgm = s.steps[9].expect.as_ref().unwrap().pgm.unwrap().unwrap();
    assert_eq!(pgm.code, Some(0x11));
    assert_eq!(pgm.teid, Some(0x1800));
    assert_eq!(pgm.exc_access_id, None);
    assert_eq!(s.steps[11].kind, StepKind::Deliver);
    assert_eq!(s.steps[11].kind.name(), "deliver");
    assert_eq!(
        s.steps[11].expect.as_ref().unwrap().delivered,
        Some(Some(true))
    );
    assert_eq!(s.steps[13].kind.name(), "check-key");
}

#[test]
fn minimal_file_takes_the_defaults() {
    let s = parse_str(
        "[vm]\nmemory = \"64K\"\n",
        Format::Toml,
        "some/dir/min.toml",
    )
    .unwrap();
    assert_eq!(s.name, "min.toml");
    assert_eq!(s.profile, Profile::Linux70);
    assert_eq!(s.vm.facilities, facility::DEFAULT.to_vec());
    assert!(!s.vm.storage_keys);
    assert!(!s.vm.protected);
    assert_eq!(s.cpu.psw_mask, 0x0000_0001_8000_0000);
    assert_eq!(s.cpu.cr[0], CrValue::Raw(0xE0));
    assert_eq!(s.cpu.sida, vec![0; 4096]);
    assert_eq!(s.cpu.sida_size, 4096);
    assert!(s.spaces.is_empty() && s.steps.is_empty());
    let j = parse_str(r#"{"vm": {"memory": 65536}}"#, Format::Json, "min.json").unwrap();
    assert_eq!(j.vm, s.vm);
}

fn err(text: &str, format: Format, file: &str) -> ScenarioError {
    match parse_str(text, format, file) {
        Ok(_) => panic!("{file} was accepted:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn unknown_field_in_toml_names_file_line_column() {
    let text = "[vm]\nmemory = \"1M\"\n\n[[step]]\nmemop = { op = \"logical-read\", sizee = 8 }\n";
    let e = err(text, Format::Toml, "bad.toml");
    let msg = e.to_string();
    assert!(
        msg.starts_with("bad.toml:5:32: unknown field `sizee`, expected one of"),
        "{msg}"
    );
    assert!(msg.contains("`size`"), "{msg}");
    assert_eq!((e.line(), e.column()), (Some(5), Some(32)));

    let text = "[vm]\nmemory = \"1M\"\nstorage_keys = true\n";
    let msg = err(text, Format::Toml, "bad.toml").to_string();
    assert!(
        msg.starts_with("bad.toml:3:1: unknown field `storage_keys`"),
        "{msg}"
    );
}

#[test]
fn unknown_field_in_json_names_file_line_column() {
    let text = "{\n  \"vm\": { \"memory\": \"1M\" },\n  \"step\": [\n    { \"memop\": { \"op\": \"logical-read\", \"sizee\": 8 } }\n  ]\n}\n";
    let e = err(text, Format::Json, "bad.json");
    let msg = e.to_string();
    assert!(msg.starts_with("bad.json:4:"), "{msg}");
    assert!(
        msg.contains("unknown field `sizee`, expected one of"),
        "{msg}"
    );
    assert!(!msg.contains(" at line "), "{msg}");
    assert_eq!(e.line(), Some(4));
    assert!(e.column().is_some());
}

#[test]
fn validation_errors_name_path_and_position() {
    // TOML: misaligned mapping; the position is the offending value.
    let text = "[vm]\nmemory = \"1M\"\n[[space]]\nname = \"a\"\ntype = \"segment\"\ntables = 0\n\
                [[space.map]]\nvirt = \"0x1800\"\nabs = 0\nsize = \"4K\"\npage = \"4K\"\n";
    let msg = err(text, Format::Toml, "m.toml").to_string();
    assert!(
        msg.starts_with("m.toml:8:8: space#1.map#1.virt: virt 0x1800 is not aligned"),
        "{msg}"
    );

    // JSON: the same problem.
    let text = r#"{"vm": {"memory": "1M"},
"space": [{"name": "a", "type": "segment", "tables": 0,
  "map": [{"virt": "0x1800", "abs": 0, "size": "4K", "page": "4K"}]}]}"#;
    let msg = err(text, Format::Json, "m.json").to_string();
    assert!(
        msg.starts_with("m.json:3:20: space#1.map#1.virt: virt 0x1800 is not aligned"),
        "{msg}"
    );

    // A missing field points at the table that lacks it.
    let text = "[vm]\nmemory = \"1M\"\n\n[[step]]\ncheck = { hex = \"00\" }\n";
    let msg = err(text, Format::Toml, "c.toml").to_string();
    assert!(
        msg.starts_with("c.toml:5:9: step#1.check: missing field `at`"),
        "{msg}"
    );

    // An unknown space.
    let text = "[vm]\nmemory = \"1M\"\n[cpu.cr]\n1 = \"space:nope\"\n";
    let msg = err(text, Format::Toml, "s.toml").to_string();
    assert!(
        msg.starts_with("s.toml:4:5: cpu.cr.1: unknown space \"nope\" (no [[space]] is defined)"),
        "{msg}"
    );
}

#[test]
fn value_forms() {
    let parse = |memory: &str| {
        parse_str(
            &format!("[vm]\nmemory = {memory}\n"),
            Format::Toml,
            "v.toml",
        )
        .map(|s| s.vm.memslots[0].size)
    };
    assert_eq!(parse("\"4KiB\"").unwrap(), 4096);
    assert_eq!(parse("\"2G\"").unwrap(), 2 << 30);
    assert_eq!(parse("\"1T\"").unwrap(), 1 << 40);
    assert_eq!(parse("\"0x1_0000\"").unwrap(), 0x10000);
    assert_eq!(parse("\"0b1000000000000\"").unwrap(), 4096);
    assert_eq!(parse("0x2000").unwrap(), 0x2000);
    assert_eq!(parse("8_192").unwrap(), 8192);
    assert!(parse("-4096").is_err());
    assert!(parse("\"-4K\"").is_err());
    assert!(parse("4096.0").is_err());
    assert!(parse("\"4KB\"").is_err());
    assert!(parse("0").is_err());
    assert!(parse("4097").is_err());

    // u64 values above i64::MAX only as strings.
    let with_set = |set: &str| {
        parse_str(
            &format!(
                "[vm]\nmemory = \"1M\"\n[[space]]\nname = \"a\"\ntype = \"segment\"\ntables = 0\n\
                 [[space.edit]]\nvirt = 0\nlevel = \"segment\"\nset = {set}\n"
            ),
            Format::Toml,
            "v.toml",
        )
        .map(|s| s.spaces[0].edits[0].change)
    };
    assert_eq!(
        with_set("\"0xffff_ffff_ffff_f000\"").unwrap(),
        EntryChange::SetClear {
            set: 0xffff_ffff_ffff_f000,
            clear: 0
        }
    );
    let e = with_set("18446744073709547520").unwrap_err().to_string();
    assert!(e.contains("as strings"), "{e}");
    assert!(with_set("\"0x1_0000_0000_0000_0000\"").is_err());
    assert!(with_set("-1").is_err());

    // Bytes forms, including the hex-string extension.
    let data = |bytes: &str| {
        parse_str(
            &format!("[vm]\nmemory = \"1M\"\n[[step]]\nmemop = {{ op = \"logical-write\", data = {bytes} }}\n"),
            Format::Toml,
            "b.toml",
        )
        .map(|s| match &s.steps[0].kind {
            StepKind::Memop(m) => (m.size, m.data.clone().unwrap()),
            _ => unreachable!(),
        })
    };
    assert_eq!(
        data("{ hex = \"00ff 1234\" }").unwrap(),
        (4, vec![0, 0xff, 0x12, 0x34])
    );
    assert_eq!(data("\"0102\"").unwrap(), (2, vec![1, 2]));
    assert_eq!(
        data("{ fill = 7, len = \"1K\" }").unwrap(),
        (1024, vec![7; 1024])
    );
    assert_eq!(
        data("{ u64 = [\"0x1\", 2] }").unwrap().1,
        vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    );
    assert_eq!(
        data("{ random = 42, len = 3 }").unwrap().1,
        vec![0x08, 0x32, 0x8d]
    );
    assert!(data("{ fill = 256, len = 1 }").is_err());
    assert!(data("{ fill = 1 }").is_err());
    assert!(data("{ hex = \"0\" }").is_err());
    assert!(data("{ hex = \"00\", fill = 1, len = 1 }").is_err());
    assert!(data("{ hex = \"00\", len = 1 }").is_err());
    assert!(data("{ random = 1, len = \"1T\" }").is_err());
    assert!(data("{ }").is_err());
    assert!(data("5").is_err());
}

#[test]
fn random_generator_is_the_formats() {
    let mut g = XorShiftStar::new(42);
    assert_eq!(g.next_u64(), 0x0832_8d7f_03bc_ec1a);
    assert_eq!(g.next_u64(), 0x077e_7279_e17a_b6cd);
    let b = random_bytes(42, 10).unwrap();
    assert_eq!(
        b,
        [0x08, 0x32, 0x8d, 0x7f, 0x03, 0xbc, 0xec, 0x1a, 0x07, 0x7e]
    );
}

fn prefixes(text: &str, format: Format) {
    for (i, _) in text.char_indices() {
        let _ = parse_str(&text[..i], format, "prefix");
    }
    let _ = parse_str(text, format, "prefix");
}

#[test]
fn prefixes_never_panic() {
    prefixes(TOML, Format::Toml);
    prefixes(JSON, Format::Json);
}

#[test]
fn garbage_never_panics() {
    let samples = [
        "",
        "\u{0}",
        "[[[[",
        "]]",
        "{",
        "[",
        "null",
        "42",
        "\"x\"",
        "[vm]\nmemory = [1, 2]",
        "[vm]\nmemory = [{start = -1, size = \"1T\"}]",
        "[vm]\nmemory = {}",
        "vm = 5",
        "[vm]\nmemory = \"99999999999999999999T\"",
        "[vm]\nmemory = 1e9",
        "[vm]\nmemory = 1970-01-01",
        "{\"vm\": {\"memory\": 18446744073709551615}}",
        "{\"vm\": {\"memory\": 1e400}}",
        "{\"vm\": {\"memory\": \"1M\"}, \"cpu\": {\"cr\": {\"1\": 1, \"1\": 2}}}",
        "{\"vm\": {\"memory\": \"1M\"}, \"step\": [{}, [], null, 5]}",
        "{\"vm\": {\"memory\": \"1M\"}, \"cpu\": {\"sida-size\": \"0xfffff000\"}}",
        "{\"vm\": {\"memory\": \"1M\"}, \"step\": [{\"memop\": {\"op\": \"logical-read\", \"size\": \"0xffffffff\"}}]}",
        "{\"\\u00e9\\ud800\": 1}",
    ];
    for s in samples {
        let _ = parse_str(s, Format::Toml, "g.toml");
        let _ = parse_str(s, Format::Json, "g.json");
    }
    // Deep nesting.
    let deep = "[".repeat(100_000);
    let _ = parse_str(&deep, Format::Toml, "g.toml");
    let _ = parse_str(&deep, Format::Json, "g.json");
    let deep = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let _ = parse_str(&deep, Format::Json, "g.json");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC*") {
        let _ = parse_str(&s, Format::Toml, "p.toml");
        let _ = parse_str(&s, Format::Json, "p.json");
    }

    #[test]
    fn mutated_files_never_panic(pos in 0usize..4096, len in 0usize..16, repl in "[\\[\\]{}=\",:0-9a-zA-Z_\\-\\. \n#]{0,8}") {
        for (text, format) in [(TOML, Format::Toml), (JSON, Format::Json)] {
            let mut start = pos % text.len();
            while !text.is_char_boundary(start) { start -= 1; }
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) { end -= 1; }
            let mutated = format!("{}{}{}", &text[..start], repl, &text[end..]);
            let _ = parse_str(&mutated, format, "m");
        }
    }
}
