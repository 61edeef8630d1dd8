//! Every scenario in `examples/` runs and every expectation in it holds. The expected
//! values in the examples were derived by hand from kernel-semantics.md (see the
//! comments in each file), so this is a conformance test of the engine as much as a
//! smoke test of the runner.

use std::path::{Path, PathBuf};

use s390_gaccess::scenario::report::diff;
use s390_gaccess::scenario::run;

fn example_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| x == "toml" || x == "json")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_documented_examples_exist() {
    let names: Vec<String> = example_files()
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect();
    for want in [
        "quickstart.toml",
        "edat.toml",
        "ar-mode.toml",
        "terminating-store.toml",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "examples/{want} is missing"
        );
    }
}

#[test]
fn every_example_passes() {
    let files = example_files();
    assert!(!files.is_empty());
    let mut failures = String::new();
    for path in &files {
        let loaded = match run::load(path) {
            Ok(l) => l,
            Err(e) => {
                failures.push_str(&format!("{e}\n"));
                continue;
            }
        };
        let mut machine = loaded.machine;
        let steps = &loaded.scenario.steps;
        assert!(!steps.is_empty(), "{} has no steps", path.display());
        for (i, step) in steps.iter().enumerate() {
            // Every step of an example says what it expects (check and check-key
            // steps are expectations themselves).
            let asserts = step.expect.is_some()
                || matches!(
                    step.kind,
                    s390_gaccess::scenario::StepKind::Check(_)
                        | s390_gaccess::scenario::StepKind::CheckKey(_)
                );
            assert!(
                asserts,
                "{} step {} has no expectation",
                path.display(),
                i + 1
            );
            let r = machine.run_step(i + 1, step);
            if !r.pass {
                failures.push_str(&diff(&path.display().to_string(), step, &r));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "example expectations failed:\n{failures}"
    );
}

/// Both profiles agree on the examples: none of them exercises the absolute-path
/// differences of §6.4.
#[test]
fn examples_pass_under_both_profiles() {
    for path in example_files() {
        for profile in [
            s390_gaccess::scenario::Profile::Linux70,
            s390_gaccess::scenario::Profile::Linux63,
        ] {
            let l = run::load(&path).expect("loads");
            let results = run::run(&l.scenario, Some(profile)).expect("builds");
            for r in results {
                assert!(
                    r.pass,
                    "{} step {} under {profile:?}: {:?}",
                    path.display(),
                    r.step,
                    r.failed
                );
            }
        }
    }
}
