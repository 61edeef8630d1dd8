//! The oracle: the model against QEMU and Hercules.
//!
//! * Recorded emulator outputs (`oracle/results/*.jsonl`) are compared with the
//!   model as it is now, without running any emulator: every difference must be a
//!   known departure (`docs/conformance.md`).
//! * When the cross compiler and the emulators are installed (`oracle/install.sh`), a
//!   small live cross-check runs them; otherwise it prints that it skipped.

use s390_gaccess::oracle::compare::DEPARTURES;
use s390_gaccess::oracle::emulator::{Backend, Emulators};
use s390_gaccess::oracle::record::Recording;
use s390_gaccess::oracle::report::Summary;
use s390_gaccess::oracle::{self, guest, plans_from_files, random_plans, run_all};
use std::path::{Path, PathBuf};

const BOTH: [Backend; 2] = [Backend::Qemu, Backend::Hercules];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn assert_all_known(summary: &Summary, what: &str) {
    for (b, s) in &summary.backends {
        assert!(s.compared > 0, "{what}: nothing compared on {}", b.name());
        assert_eq!(
            (s.unknown, s.missing, s.harness),
            (0, 0, 0),
            "{what} on {}: unknown differences, missing results or harness failures: {:?}",
            b.name(),
            s.departures
        );
        assert!(
            s.errors.is_empty(),
            "{what} on {}: {:?}",
            b.name(),
            s.errors
        );
    }
}

fn replay(plans: Vec<oracle::plan::Plan>, recording: &Path) -> Summary {
    let rec = Recording::load(recording).expect("recording");
    let checked = run_all(plans, &BOTH, &Emulators::default(), None, Some(&rec)).expect("replay");
    Summary::of(&checked, &BOTH)
}

// The recorded random run: seed 1, 2000 accesses, one batch (the command in
// oracle/README.md records it again).
#[test]
fn recorded_random_run_matches_the_model() {
    let plans = random_plans(1, 2000, 2000, None).expect("plans");
    let s = replay(plans, &root().join("oracle/results/random-seed1.jsonl"));
    assert_eq!(s.accesses, 2000);
    assert_all_known(&s, "random seed 1");
}

// The example scenarios of oracle/scenarios, recorded on both emulators.
#[test]
fn recorded_scenarios_match_the_model() {
    // Plans are named by the path as given on the command line that recorded them.
    let names = [
        "oracle/scenarios/basics.toml",
        "oracle/scenarios/ar-mode.toml",
        "oracle/scenarios/ar-mode-art.toml",
    ];
    let files: Vec<PathBuf> = names.iter().map(|n| root().join(n)).collect();
    let mut plans = plans_from_files(&files).expect("plans");
    for (p, n) in plans.iter_mut().zip(names) {
        p.name = n.to_string();
    }
    let s = replay(plans, &root().join("oracle/results/scenarios.jsonl"));
    assert_all_known(&s, "oracle/scenarios");
}

// The "what if" probe with the kernel's rules agrees with the memop model on every
// random access (otherwise the access would be skipped as "internal").
#[test]
fn probe_agrees_with_the_memop_model() {
    for p in random_plans(5, 3000, 1500, None).expect("plans") {
        for a in &p.accesses {
            for s in a.skip.iter().flatten() {
                assert!(
                    !s.starts_with("internal"),
                    "{} step {}: {s}",
                    p.name,
                    a.step
                );
            }
        }
    }
}

// The random generator reaches every outcome of access-register translation (§5.3):
// the ASCE, and each exception of the ALET, ALE and ASTE checks, and the fetch-only
// ALE's protection (§8.4), also through the primary ASTE's list (ALET P bit, CR5), so
// that the emulators see them all.
#[test]
fn random_scenarios_reach_every_art_outcome() {
    let mut codes = std::collections::BTreeMap::<u16, usize>::new();
    let mut alc = 0;
    let mut primary_list = 0;
    for p in random_plans(3, 10000, 2500, None).expect("plans") {
        for a in &p.accesses {
            if !a.ar_mode() {
                continue;
            }
            *codes.entry(a.model.code).or_default() += 1;
            // ALET bit 7 (P), §5.3: translated through CR5's list.
            if a.alet & 0x0100_0000 != 0 && a.ar != 0 && a.model.code == 0 {
                primary_list += 1;
            }
            // TEID bits 60-61 (access-list controlled), §9.3.
            if a.model.code == 4 && a.model.teid.is_some_and(|t| t & 0xc == 0xc) {
                alc += 1;
            }
        }
    }
    for code in [0, 0x28, 0x29, 0x2a, 0x2b, 0x2c] {
        assert!(
            codes.get(&code).is_some_and(|&n| n > 0),
            "code {code:#x}: {codes:?}"
        );
    }
    assert!(alc > 0, "no access-list-controlled protection: {codes:?}");
    assert!(
        primary_list > 0,
        "no access through the primary ASTE's list"
    );
}

// Every departure in the code is documented, with its id, in docs/conformance.md.
#[test]
fn departures_are_documented() {
    let doc =
        std::fs::read_to_string(root().join("docs/conformance.md")).expect("docs/conformance.md");
    let section = doc
        .split("## Known departures of the emulators")
        .nth(1)
        .expect("section \"Known departures of the emulators\"");
    for d in DEPARTURES {
        assert!(
            section.contains(&format!("`{}`", d.id)),
            "{} is not documented",
            d.id
        );
    }
}

// A live run when everything is installed: 300 random accesses and the basics.
#[test]
fn live_cross_check_when_emulators_are_installed() {
    let emus = Emulators::default();
    let missing: Vec<&str> = [
        (!guest::compiler_available("s390x-linux-gnu-")).then_some("s390x-linux-gnu-gcc"),
        (!emus.available(Backend::Qemu)).then_some("qemu-system-s390x"),
        (!emus.available(Backend::Hercules)).then_some("hercules"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        println!(
            "oracle live cross-check skipped: {} not installed (oracle/install.sh)",
            missing.join(", ")
        );
        return;
    }
    let source = oracle::GuestSource::new(root().join("target/oracle-build"), "s390x-linux-gnu-");
    let mut plans = random_plans(7, 300, 300, None).expect("plans");
    plans.extend(plans_from_files(&[root().join("oracle/scenarios/basics.toml")]).expect("basics"));
    let checked = run_all(plans, &BOTH, &emus, Some(&source), None).expect("run");
    let s = Summary::of(&checked, &BOTH);
    assert_all_known(&s, "live");
}
