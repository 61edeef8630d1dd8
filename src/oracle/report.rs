//! Printing the comparison: one block per access (text) or one JSON object per access,
//! and a summary with counts per backend, per departure and per skip reason.
#![forbid(unsafe_code)]

use super::Checked;
use super::compare::{Comparison, DEPARTURES, Verdict};
use super::emulator::Backend;
use super::probe::Outcome;
use crate::exception::Teid;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Counts of one backend.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackendSummary {
    /// Accesses the backend ran and reported.
    pub compared: usize,
    /// Identical results.
    pub same: usize,
    /// Differences all explained by known departures.
    pub known: usize,
    /// Unexplained differences.
    pub unknown: usize,
    /// Not run (see `skip_reasons`).
    pub skipped: usize,
    /// Run but no result printed.
    pub missing: usize,
    /// The guest's own instruction fetch failed.
    pub harness: usize,
    /// Differing fields per departure id.
    pub departures: BTreeMap<String, usize>,
    /// Skips per reason.
    pub skip_reasons: BTreeMap<String, usize>,
    /// Run problems.
    pub errors: Vec<String>,
    /// Emulator seconds.
    pub seconds: f64,
}

/// Counts of all backends.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Accesses planned.
    pub accesses: usize,
    /// Per backend.
    pub backends: BTreeMap<Backend, BackendSummary>,
}

impl Summary {
    /// Count the comparisons.
    pub fn of(checked: &[Checked], backends: &[Backend]) -> Self {
        let mut s = Summary::default();
        for &b in backends {
            s.backends.insert(b, BackendSummary::default());
        }
        for c in checked {
            s.accesses += c.plan.accesses.len();
            for &b in backends {
                let bs = s.backends.entry(b).or_default();
                if let Some(run) = &c.runs[b.index()] {
                    bs.seconds += run.seconds;
                    bs.errors
                        .extend(run.errors.iter().map(|e| format!("{}: {e}", c.plan.name)));
                }
                for cmp in c.comparisons.iter().filter_map(|x| x[b.index()].as_ref()) {
                    match &cmp.verdict {
                        Verdict::Same => bs.same += 1,
                        Verdict::Known => bs.known += 1,
                        Verdict::Unknown => bs.unknown += 1,
                        Verdict::Skipped(r) => {
                            bs.skipped += 1;
                            *bs.skip_reasons.entry(r.clone()).or_default() += 1;
                        }
                        Verdict::Missing => bs.missing += 1,
                        Verdict::Harness(_) => bs.harness += 1,
                    }
                    if matches!(
                        cmp.verdict,
                        Verdict::Same | Verdict::Known | Verdict::Unknown
                    ) {
                        bs.compared += 1;
                    }
                    for d in &cmp.diffs {
                        let id = d.departure.unwrap_or("UNKNOWN");
                        *bs.departures
                            .entry(format!("{id} ({})", d.field.name()))
                            .or_default() += 1;
                    }
                }
            }
        }
        s
    }

    /// 0 when every difference is known; 1 otherwise (unknown, missing, run errors).
    pub fn exit_code(&self) -> i32 {
        let bad = self
            .backends
            .values()
            .any(|b| b.unknown > 0 || b.missing > 0 || !b.errors.is_empty());
        i32::from(bad)
    }
}

/// The TEID's fields in words.
pub fn decode_teid(t: u64) -> String {
    let t = Teid(t);
    let fsi = match (t.0 & Teid::FSI_MASK) >> Teid::FSI_SHIFT {
        0 => "-",
        1 => "store",
        2 => "fetch",
        _ => "11",
    };
    let (a, b, c) = t.protection_bits();
    let space = ["primary", "ar", "secondary", "home"][t.address_space() as usize];
    format!(
        "addr={:#x} fsi={fsi} b56/60/61={}{}{} as={space}",
        t.address(),
        u8::from(a),
        u8::from(b),
        u8::from(c)
    )
}

fn outcome_json(o: &Outcome) -> Value {
    json!({
        "code": o.code,
        "teid": o.teid.map(|t| format!("{t:016x}")),
        "teid_decoded": o.teid.map(decode_teid),
        "exc_access_id": o.eaid,
        "data": o.data.map(|d| format!("{d:#x}")),
    })
}

fn comparison_json(c: &Comparison) -> Value {
    let reason = match &c.verdict {
        Verdict::Skipped(r) | Verdict::Harness(r) => Some(r.clone()),
        _ => None,
    };
    json!({
        "verdict": c.verdict.name(),
        "reason": reason,
        "outcome": c.emu.as_ref().map(outcome_json),
        "diffs": c.diffs.iter().map(|d| json!({"field": d.field.name(), "departure": d.departure})).collect::<Vec<_>>(),
    })
}

/// JSON lines: one object per access, then the summary.
pub fn print_json(checked: &[Checked], backends: &[Backend], summary: &Summary) {
    for c in checked {
        for (a, cmp) in c.plan.accesses.iter().zip(&c.comparisons) {
            let mut o = json!({
                "plan": c.plan.name, "step": a.step, "access": a.describe(),
                "model": outcome_json(&a.model),
            });
            for &b in backends {
                if let Some(x) = &cmp[b.index()] {
                    o[b.name()] = comparison_json(x);
                }
            }
            println!("{o}");
        }
    }
    let mut s = json!({"summary": true, "accesses": summary.accesses, "exit": summary.exit_code()});
    for (b, bs) in &summary.backends {
        s[b.name()] = json!({
            "compared": bs.compared, "same": bs.same, "known": bs.known, "unknown": bs.unknown,
            "skipped": bs.skipped, "missing": bs.missing, "harness": bs.harness,
            "departures": bs.departures, "skip_reasons": bs.skip_reasons, "errors": bs.errors,
            "seconds": bs.seconds,
        });
    }
    println!("{s}");
}

fn teid_detail(model: &Outcome, emu: &Outcome) -> Option<String> {
    match (model.teid, emu.teid) {
        (Some(m), Some(e)) if m != e => Some(format!(
            "model TEID {} | emulator TEID {}",
            decode_teid(m),
            decode_teid(e)
        )),
        _ => None,
    }
}

/// Human-readable report.
pub fn print_text(
    checked: &[Checked],
    backends: &[Backend],
    show_all: bool,
    summary: &Summary,
    elapsed: Duration,
    versions: &BTreeMap<Backend, String>,
) {
    for c in checked {
        let mut head = format!("# {}: {} accesses", c.plan.name, c.plan.accesses.len());
        for &b in backends {
            if let Some(r) = &c.runs[b.index()] {
                head += &format!(", {} {:.2}s", b.name(), r.seconds);
            }
        }
        println!("{head}");
        if show_all {
            for n in &c.plan.notes {
                println!("#   {n}");
            }
        }
        for (a, cmp) in c.plan.accesses.iter().zip(&c.comparisons) {
            let interesting = cmp.iter().flatten().any(|x| {
                !matches!(
                    x.verdict,
                    Verdict::Same | Verdict::Known | Verdict::Skipped(_)
                )
            });
            if !show_all && !interesting {
                continue;
            }
            println!("step {:<5} {}", a.step, a.describe());
            println!("    {:<9} {}", "model", a.model.describe());
            for &b in backends {
                let Some(x) = &cmp[b.index()] else { continue };
                let what = match (&x.verdict, &x.emu) {
                    (Verdict::Skipped(r), _) => format!("skipped: {r}"),
                    (Verdict::Harness(r), _) => format!("harness: {r}"),
                    (Verdict::Missing, _) => "MISSING: no result".into(),
                    (v, Some(e)) => {
                        let mut s = format!("{:<60} {}", e.describe(), v.name());
                        for d in &x.diffs {
                            s += &format!(
                                " {}={}",
                                d.field.name(),
                                d.departure.unwrap_or("UNKNOWN")
                            );
                        }
                        s
                    }
                    (v, None) => v.name().into(),
                };
                println!("    {:<9} {what}", b.name());
                if let Some(e) = &x.emu
                    && !x.diffs.is_empty()
                    && let Some(t) = teid_detail(&a.model, e)
                {
                    println!("              {t}");
                }
            }
        }
    }
    println!(
        "# summary: {} accesses planned, {:.1}s",
        summary.accesses,
        elapsed.as_secs_f64()
    );
    for (b, bs) in &summary.backends {
        println!(
            "# {:<9} {} compared: {} same, {} known departures, {} UNKNOWN; {} skipped, {} missing, {} harness; emulator {:.1}s{}",
            b.name(),
            bs.compared,
            bs.same,
            bs.known,
            bs.unknown,
            bs.skipped,
            bs.missing,
            bs.harness,
            bs.seconds,
            versions
                .get(b)
                .map(|v| format!(" ({v})"))
                .unwrap_or_default()
        );
        for (id, n) in &bs.departures {
            println!("#     {n:>6}  {id}");
        }
        for (r, n) in &bs.skip_reasons {
            println!("#     {n:>6}  skipped: {r}");
        }
        for e in &bs.errors {
            println!("#     error: {e}");
        }
    }
    let _ = DEPARTURES;
}
