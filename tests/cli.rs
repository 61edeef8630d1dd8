//! The `s390-gaccess` binary: `run` (table and `--json`), `translate`, `check`, and the
//! exit statuses 0 (all held), 1 (an expectation failed), 2 (unreadable or invalid file).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_s390-gaccess"))
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// A scenario file in the test's scratch directory.
fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write scratch file");
    p
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

const FAILING: &str = r#"
name = "failing"

[vm]
memory = "64K"

[[step]]
memop = { op = "logical-read", gaddr = 0x1000, size = 2 }
expect = { ret = 0 }

[[step]]
memop = { op = "logical-read", gaddr = 0x10000, size = 2 }
expect = { ret = 4, teid = "0x10800" }
"#;

#[test]
fn run_prints_a_table_and_exits_0() {
    let p = example("quickstart.toml");
    let o = run(&["run", p.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("quickstart (linux-7.0)"), "{out}");
    // A step line: number, what ran, return value with its name, verdict, exception.
    let line = out
        .lines()
        .find(|l| l.contains("gaddr=0x14000"))
        .expect("the page-translation step");
    assert!(line.trim_start().starts_with('3'), "{line}");
    for part in [
        "memop logical-read",
        "17 (page-translation)",
        "PASS",
        "TEID 0x0000000000014800",
        "address 0x14000",
        "fetch",
        "AS primary",
    ] {
        assert!(line.contains(part), "`{part}` not in {line}");
    }
    let key_line = out
        .lines()
        .find(|l| l.contains("TEID 0x0000000000011408"))
        .expect("key step");
    assert!(
        key_line.contains("4 (protection)") && key_line.contains("key-controlled protection"),
        "{key_line}"
    );
    assert!(out.contains("13 passed, 0 failed"), "{out}");
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
}

#[test]
fn run_failing_expectation_exits_1_with_a_diff_on_stderr() {
    let p = scratch("failing.toml", FAILING);
    let o = run(&["run", p.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let out = text(&o.stdout);
    assert!(
        out.contains("FAIL") && out.contains("5 (addressing)"),
        "{out}"
    );
    assert!(out.contains("1 passed, 1 failed"), "{out}");
    let err = text(&o.stderr);
    assert!(err.contains("failing.toml:11: step 2"), "{err}");
    assert!(
        err.contains("ret: expected 4 (protection), actual 5 (addressing)"),
        "{err}"
    );
    assert!(
        err.contains("pgm.teid: expected 0x0000000000010800, actual 0x0000000000000000"),
        "{err}"
    );
}

#[test]
fn run_json_prints_one_object_per_step() {
    let p = scratch("failing-json.toml", FAILING);
    let o = run(&["run", "--json", p.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let out = text(&o.stdout);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["step"], 1);
    assert_eq!(lines[0]["kind"], "memop");
    assert_eq!(lines[0]["ret"], 0);
    assert_eq!(lines[0]["pass"], true);
    assert!(lines[0].get("failed").is_none());
    assert!(lines[0].get("file").is_none(), "one file: no file member");
    assert_eq!(lines[1]["ret"], 5);
    assert_eq!(lines[1]["pgm"]["code"], 5);
    assert_eq!(lines[1]["pgm"]["teid"], "0x0000000000000000");
    assert_eq!(lines[1]["pass"], false);
    assert_eq!(
        lines[1]["failed"],
        serde_json::json!([
            {"field": "ret", "expected": 4, "actual": 5},
            {"field": "pgm.teid", "expected": "0x0000000000010800", "actual": "0x0000000000000000"}
        ])
    );
    // The diff is in the JSON, not on stderr.
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
}

#[test]
fn run_several_files_tags_json_lines_and_takes_the_worst_status() {
    let ok = example("edat.toml");
    let bad = scratch("failing-multi.toml", FAILING);
    let o = run(&["run", "--json", ok.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let out = text(&o.stdout);
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert!(first["file"].as_str().unwrap().ends_with("edat.toml"));
    let missing = scratch("missing-vm.toml", "name = \"x\"\n");
    let o = run(&["run", ok.to_str().unwrap(), missing.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(text(&o.stdout).contains("10 passed, 0 failed"));
}

#[test]
fn profile_override() {
    let p = scratch(
        "profile.toml",
        r#"
[vm]
memory = "1M"

[[step]]
memop = { op = "absolute-read", gaddr = 0xff000, size = 0x2000, flags = ["check-only"] }
expect = { ret = 5 }
"#,
    );
    assert_eq!(code(&run(&["run", p.to_str().unwrap()])), 0);
    let o = run(&["run", "--profile", "linux-6.3", p.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(text(&o.stdout).contains("(linux-6.3)"));
    assert_eq!(
        code(&run(&[
            "run",
            "--profile",
            "linux-5.0",
            p.to_str().unwrap()
        ])),
        2
    );
}

#[test]
fn invalid_files_exit_2_naming_file_line_and_column() {
    let p = scratch(
        "bad.toml",
        r#"
[vm]
memory = "1M"

[[step]]
memop = { op = "logical-read", size = 8, colour = "red" }
"#,
    );
    let o = run(&["run", p.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    let err = text(&o.stderr);
    let place = format!("{}:6:", p.display());
    assert!(err.contains(&place), "`{place}` not in {err}");
    assert!(err.contains("colour"), "{err}");

    // A set-up error (table outside memory) is just as precise.
    let p = scratch(
        "bad-setup.toml",
        r#"
[vm]
memory = "64K"

[[space]]
name = "a"
type = "segment"
tables = 0xf000
"#,
    );
    let o = run(&["check", p.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("{}:8:10: space#1.tables", p.display())),
        "{err}"
    );

    let o = run(&["run", "/nonexistent/file.toml"]);
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("/nonexistent/file.toml"));
}

#[test]
fn check_validates_without_running() {
    let a = example("ar-mode.toml");
    let f = scratch("failing-check.toml", FAILING);
    // Failing expectations do not matter to `check`: nothing runs.
    let o = run(&["check", a.to_str().unwrap(), f.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("ar-mode.toml: ok") && out.contains("failing-check.toml: ok"),
        "{out}"
    );
    let bad = scratch(
        "bad-check.json",
        "{\"vm\": {\"memory\": \"1M\"}, \"step\": [{}]}",
    );
    let o = run(&["check", a.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("bad-check.json:1:"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn translate_explains_every_stage() {
    let p = example("quickstart.toml");
    let o = run(&[
        "translate",
        p.to_str().unwrap(),
        "--gaddr",
        "0x11100",
        "--store",
        "--key",
        "2",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for part in [
        "Effective address (§5.1)",
        "64-bit addressing",
        "primary space mode: ASCE = CR1 = 0x0000000000080007 (space \"main\")",
        "DT 1 (region-third), TL 3",
        "region-third table entry at absolute 0x80000",
        "raw 0x0000000000084007: STO 0x84000",
        "segment table entry at absolute 0x84000",
        "page table entry at absolute 0x88088",
        "PFRA 0x21000",
        "Prefixing (§5.7)",
        "store: DAT protection accumulated = 0: ok",
        "access key 2, storage key of frame 0x21000: 0x18 (ACC 1, F 1, R 0, C 0)",
        "→ protection exception, type key-controlled",
        "TEID 0x0000000000011408",
        "bits 56,60,61: 010, key-controlled protection",
    ] {
        assert!(out.contains(part), "`{part}` not in:\n{out}");
    }
    assert!(!out.contains("note:"), "{out}");
}

#[test]
fn translate_in_ar_mode_and_after_steps() {
    let p = example("ar-mode.toml");
    let o = run(&[
        "translate",
        p.to_str().unwrap(),
        "--gaddr",
        "0x10000",
        "--ar",
        "2",
        "--store",
        "--after-step",
        "3",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for part in [
        "after running steps 1..=3",
        "ALET = AR2 = 0x00030003",
        "ALD at real 0x5010 (absolute 0x5010) = 0x00006001: ALO 0xc0",
        "ALE at real 0x6030",
        "FO 1",
        "ASTE at real 0x7000",
        "access-list-controlled",
        "TEID 0x000000000001040d",
        "exception access id 2",
    ] {
        assert!(out.contains(part), "`{part}` not in:\n{out}");
    }
    assert!(!out.contains("note:"), "{out}");
    // Before the structures are written the ALD reads as 0: ALO 0, ALL 0, so ALEN 2
    // (2 / 8 = 0 ≤ 0) selects the "ALE" at 0x20, zeros, whose ALESN 0 ≠ 3 (§5.3).
    let o = run(&[
        "translate",
        p.to_str().unwrap(),
        "--gaddr",
        "0x10000",
        "--ar",
        "1",
    ]);
    let out = text(&o.stdout);
    assert!(
        out.contains("ALE ALESN 0x0 = ALET ALESN 0x3: FAILS") && out.contains("ALE-sequence"),
        "{out}"
    );
    // Too many steps.
    let o = run(&[
        "translate",
        p.to_str().unwrap(),
        "--gaddr",
        "0",
        "--after-step",
        "99",
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("has only 20 steps"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn translate_large_frames_and_edat_off() {
    let p = example("edat.toml");
    let o = run(&["translate", p.to_str().unwrap(), "--gaddr", "0x80000010"]);
    let out = text(&o.stdout);
    assert!(out.contains("FC 1 (2G frame), RFAA 0x80000000"), "{out}");
    assert!(
        out.contains("absolute address 0x0000000080000010 (2G frame at 0x80000000)"),
        "{out}"
    );
    let o = run(&[
        "translate",
        p.to_str().unwrap(),
        "--gaddr",
        "0x101234",
        "--after-step",
        "8",
    ]);
    let out = text(&o.stdout);
    assert!(
        out.contains("FC 1 (ignored: EDAT-1 does not apply, §11 item 4)"),
        "{out}"
    );
    assert!(
        out.contains("page table entry at absolute 0x200008"),
        "{out}"
    );
    assert!(out.contains("PGM 0x11 page-translation"), "{out}");
    assert!(!out.contains("note:"), "{out}");
}

#[test]
fn translate_rejects_bad_arguments() {
    let p = example("quickstart.toml");
    let p = p.to_str().unwrap();
    assert_eq!(code(&run(&["translate", p, "--gaddr", "banana"])), 2);
    assert_eq!(
        code(&run(&["translate", p, "--gaddr", "0x10000000000000000"])),
        2
    );
    assert_eq!(
        code(&run(&["translate", p, "--gaddr", "0", "--key", "16"])),
        2
    );
    assert_eq!(code(&run(&["translate", p])), 2);
    // Addresses near 2^64 are fine.
    let o = run(&["translate", p, "--gaddr", "0xffff_ffff_ffff_f000"]);
    assert_eq!(code(&o), 0);
    assert!(text(&o.stdout).contains("ASCE-type"), "{}", text(&o.stdout));
}
