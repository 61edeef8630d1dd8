//! The conformance suite: the kernel's own test cases (selftest-cases.md: the Linux
//! selftests memop.c, tprot.c, keyop.c, ucontrol_test.c and the kvm-unit-tests cases
//! that are memory operations) and single rules of kernel-semantics.md, written as
//! scenario files (scenario-format.md) in `tests/conformance/`. docs/conformance.md
//! maps every rule of kernel-semantics.md to the tests that cover it.
//!
//! * One `#[test]` per file (the `conformance!` list below). A failing step is reported
//!   as `FAIL file:line: step N: what ran` with one line per field that did not hold,
//!   expected against actual; every failing step of the file is reported, not only the
//!   first.
//! * A file that cannot be read, does not parse or cannot be built fails its test with
//!   the reader's message (file, line, column, field).
//! * A file without a top-level `profile` runs under both kernel profiles: the
//!   selftests' outcomes do not depend on it (kernel-semantics.md §14); files that test
//!   a §6.4 difference name their profile and run under it only.
//! * Every step that produces a result (memop, translate, tprot, keyop, get-skeys,
//!   deliver) must carry an `expect`: a step that asserts nothing cannot fail.
//! * `every_file_has_a_test` keeps the list and the directory in step, and
//!   `every_case_id_is_present` that every case the suite claims is cited in a file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use s390_gaccess::scenario::report::diff;
use s390_gaccess::scenario::{Profile, StepKind, run};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

/// Whether the TOML text names a `profile` at the top level.
fn names_profile(text: &str) -> bool {
    match text.parse::<toml::Table>() {
        Ok(t) => t.contains_key("profile"),
        // The scenario reader reports the syntax error with its place.
        Err(_) => false,
    }
}

/// Run every step of `path` (under its own profile, and under the other one unless the
/// file names its profile); panic with the diff of every failing step.
fn run_file(path: &Path) {
    let shown = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .display()
        .to_string();
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("conformance file {shown} cannot be read: {e}"));
    let loaded = run::load(path).unwrap_or_else(|e| panic!("conformance file {shown}: {e}"));
    let scenario = loaded.scenario;
    assert!(!scenario.steps.is_empty(), "{shown} has no steps");

    let mut silent = Vec::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        let produces = matches!(
            step.kind,
            StepKind::Memop(_)
                | StepKind::Translate(_)
                | StepKind::Tprot(_)
                | StepKind::Keyop(_)
                | StepKind::GetSkeys(_)
                | StepKind::Deliver
        );
        if produces && step.expect.is_none() {
            silent.push(format!(
                "{shown}:{}: step {} ({}) has no `expect`",
                step.line.map_or_else(|| "?".to_owned(), |l| l.to_string()),
                i + 1,
                step.kind.name()
            ));
        }
    }
    assert!(silent.is_empty(), "{}", silent.join("\n"));

    let own = scenario.profile;
    let mut profiles = vec![own];
    if !names_profile(&text) {
        profiles.push(match own {
            Profile::Linux70 => Profile::Linux63,
            Profile::Linux63 => Profile::Linux70,
        });
    }
    let mut failures = String::new();
    for profile in profiles {
        let results = run::run(&scenario, Some(profile))
            .unwrap_or_else(|e| panic!("conformance file {shown}: {e}"));
        assert_eq!(results.len(), scenario.steps.len());
        let mut failed = 0;
        for (step, r) in scenario.steps.iter().zip(&results) {
            if !r.pass {
                if failed == 0 {
                    failures.push_str(&format!("-- profile {}\n", profile.as_str()));
                }
                failed += 1;
                failures.push_str(&diff(&shown, step, r));
            }
        }
        if failed > 0 {
            failures.push_str(&format!(
                "{failed} of {} steps failed under {}\n",
                results.len(),
                profile.as_str()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{failures}");
}

macro_rules! conformance {
    ($($test:ident => $file:literal,)*) => {
        /// Every file of the suite, in the order of the tests.
        const FILES: &[&str] = &[$($file),*];
        $(
            #[test]
            fn $test() {
                run_file(&dir().join($file));
            }
        )*
    };
}

conformance! {
    // Linux selftest s390/memop.c (selftest-cases.md §2).
    memop_copy => "memop-copy.toml",
    memop_copy_key => "memop-copy-key.toml",
    memop_cmpxchg_key => "memop-cmpxchg-key.toml",
    memop_cmpxchg_key_concurrent => "memop-cmpxchg-key-concurrent.toml",
    memop_copy_key_storage_prot_override => "memop-copy-key-storage-prot-override.toml",
    memop_copy_key_fetch_prot => "memop-copy-key-fetch-prot.toml",
    memop_fetch_prot_override => "memop-fetch-prot-override.toml",
    memop_errors_key => "memop-errors-key.toml",
    memop_errors_cmpxchg_key => "memop-errors-cmpxchg-key.toml",
    memop_termination => "memop-termination.toml",
    memop_errors_key_storage_prot_override => "memop-errors-key-storage-prot-override.toml",
    memop_errors => "memop-errors.toml",
    memop_errors_cmpxchg => "memop-errors-cmpxchg.toml",
    memop_not_in_selftest => "memop-not-in-selftest.toml",
    memop_protected => "memop-protected.toml",
    // Linux selftests s390/tprot.c, keyop.c, ucontrol_test.c (§3, §4, §5).
    selftest_tprot => "selftest-tprot.toml",
    selftest_keyop_init => "selftest-keyop-init.toml",
    selftest_keyop_rrbe => "selftest-keyop-rrbe.toml",
    selftest_keyop_iske => "selftest-keyop-iske.toml",
    selftest_keyop_sske => "selftest-keyop-sske.toml",
    selftest_ucontrol_skey => "selftest-ucontrol-skey.toml",
    // kvm-unit-tests (§6).
    kut_skey => "kut-skey.toml",
    kut_tprot => "kut-tprot.toml",
    kut_edat => "kut-edat.toml",
    kut_lap => "kut-lap.toml",
    kut_sie_dat => "kut-sie-dat.toml",
    // Single rules of kernel-semantics.md not exercised above (docs/conformance.md).
    spec_ioctl => "spec-ioctl.toml",
    spec_state => "spec-state.toml",
    spec_no_tlb => "spec-no-tlb.toml",
    spec_art => "spec-art.toml",
    spec_linux_6_3 => "spec-linux-6.3.toml",
    spec_linux_7_0 => "spec-linux-7.0.toml",
}

/// The directory holds exactly the listed files: a new file without a test, or a listed
/// file that is missing, fails here (the missing file's own test fails too).
#[test]
fn every_file_has_a_test() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir().display()))
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.ends_with(".toml") || n.ends_with(".json"))
        .collect();
    let listed: BTreeSet<String> = FILES.iter().map(|s| (*s).to_owned()).collect();
    let unlisted: Vec<_> = on_disk.difference(&listed).collect();
    let missing: Vec<_> = listed.difference(&on_disk).collect();
    assert!(
        unlisted.is_empty() && missing.is_empty(),
        "tests/conformance: files without a test: {unlisted:?}; listed but missing: {missing:?}"
    );
}

/// Whether a comment line of `text` cites `id` (not as the prefix of a longer id).
fn cites(text: &str, id: &str) -> bool {
    text.lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .any(|l| {
            l.match_indices(id).any(|(at, _)| {
                let before = l[..at].chars().next_back();
                let after = l[at + id.len()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !after.is_some_and(|c| c.is_ascii_digit())
            })
        })
}

/// Every case of selftest-cases.md that the suite expresses (docs/conformance.md lists
/// the others as out of scope) is cited in a comment of some file.
#[test]
fn every_case_id_is_present() {
    let mut text = String::new();
    for f in FILES {
        text.push_str(&std::fs::read_to_string(dir().join(f)).unwrap_or_default());
        text.push('\n');
    }
    let mut ids: Vec<String> = Vec::new();
    ids.extend((1..=63).map(|n| format!("MEMOP-{n:03}")));
    ids.extend((1..=12).map(|n| format!("TPROT-ST-{n:02}")));
    ids.extend((0..=4).map(|n| format!("KEYOP-{n:02}")));
    ids.extend((1..=3).map(|n| format!("UC-SKEY-{n:02}")));
    let skey_in_scope = [6, 8].into_iter().chain(9..=22).chain(24..=44);
    ids.extend(skey_in_scope.map(|n| format!("SKEY-{n:02}")));
    ids.extend((1..=5).map(|n| format!("KUT-TPROT-{n:02}")));
    ids.extend((1..=17).map(|n| format!("EDAT-{n:02}")));
    ids.extend(
        [1, 3, 5, 7, 9, 10, 12, 14, 15, 16, 17]
            .into_iter()
            .map(|n| format!("LAP-{n:02}")),
    );
    ids.extend((1..=2).map(|n| format!("SIEDAT-{n:02}")));
    let missing: Vec<&String> = ids.iter().filter(|id| !cites(&text, id)).collect();
    assert!(
        missing.is_empty(),
        "case ids not cited in tests/conformance: {missing:?}"
    );
}

/// A malformed file fails its test loudly, naming the file and the line.
#[test]
fn a_malformed_file_fails_loudly() {
    let tmp = std::env::temp_dir().join(format!("conformance-malformed-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let bad = tmp.join("bad.toml");
    std::fs::write(
        &bad,
        "[vm]\nmemory = \"1M\"\n\n[[step]]\nmemop = { op = \"logical-read\", gaddr = 0, size = 8, bogus = 1 }\nexpect = { ret = 0 }\n",
    )
    .expect("write");
    let caught = std::panic::catch_unwind(|| run_file(&bad));
    let _ = std::fs::remove_dir_all(&tmp);
    let msg = caught.expect_err("a malformed file must fail");
    let text = msg
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| msg.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    assert!(
        text.contains("bad.toml") && text.contains(":5"),
        "the message names the file and line: {text}"
    );
}

/// A missing file fails its test loudly.
#[test]
#[should_panic(expected = "cannot be read")]
fn a_missing_file_fails_loudly() {
    run_file(&dir().join("no-such-file.toml"));
}

/// A step whose expectation does not hold fails with file:line, step, field, expected
/// and actual.
#[test]
fn a_failing_step_reports_its_diff() {
    let tmp = std::env::temp_dir().join(format!("conformance-failing-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let bad = tmp.join("failing.toml");
    std::fs::write(
        &bad,
        "profile = \"linux-7.0\"\n[vm]\nmemory = \"1M\"\n\n[[step]]\nmemop = { op = \"logical-read\", gaddr = 0, size = 8 }\nexpect = { ret = 4 }\n",
    )
    .expect("write");
    let caught = std::panic::catch_unwind(|| run_file(&bad));
    let _ = std::fs::remove_dir_all(&tmp);
    let msg = caught.expect_err("a failing expectation must fail");
    let text = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        text.contains("failing.toml:5: step 1")
            && text.contains("ret: expected 4")
            && text.contains("actual 0"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------
// Rules a scenario cannot express.

/// kernel-semantics.md §6.1: the absolute path advances `gpa` in u64 arithmetic, so an
/// access over the last page of the 64-bit space continues at absolute 0 (CHECK_ONLY,
/// write and read alike). A scenario cannot show it: its memslots may not end at 2^64
/// (as KVM's may not), so the Rust API builds the guest.
#[test]
fn s6_1_absolute_access_wraps_at_2_64() {
    use s390_gaccess::memop::{MemOp, Profile as MemopProfile};
    use s390_gaccess::vm::{Facilities, Vm};
    let top = 0xFFFF_FFFF_FFFF_F000;
    let vm = Vm::new(
        &[(0, 0x1_0000), (top, 0x1000)],
        Facilities::from_numbers(&[8, 78]),
    )
    .expect("two memslots");
    let data: Vec<u8> = (1..=16).collect();
    for profile in MemopProfile::ALL {
        let r = MemOp::absolute_write(u64::MAX - 7, data.clone())
            .check_only()
            .profile(profile)
            .run_vm(&vm);
        assert_eq!(r.ret, 0, "{profile:?} CHECK_ONLY");
        let r = MemOp::absolute_write(u64::MAX - 7, data.clone())
            .profile(profile)
            .run_vm(&vm);
        assert_eq!(r.ret, 0, "{profile:?} write");
        let r = MemOp::absolute_read(0, 8).profile(profile).run_vm(&vm);
        assert_eq!(
            r.data,
            data[8..],
            "{profile:?}: the second half landed at absolute 0"
        );
        let r = MemOp::absolute_read(u64::MAX - 7, 16)
            .profile(profile)
            .run_vm(&vm);
        assert_eq!((r.ret, r.data), (0, data.clone()), "{profile:?} read");
    }
}
