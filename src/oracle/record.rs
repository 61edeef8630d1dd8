//! Recorded emulator outputs (`--record FILE`, `--replay FILE`): JSON lines, one per
//! run and one per access result, so that the comparison with the model can be redone
//! without the emulators (`tests/oracle.rs` does so for `oracle/results/`).
//!
//! ```text
//! {"type":"run","plan":"random-1-0","backend":"qemu","version":"…","facilities":[0,1,…],"errors":[],"seconds":0.2}
//! {"type":"access","plan":"random-1-0","backend":"qemu","idx":0,"sig":"…","r":"1 00060011 ff 0000000000101800 0 2198"}
//! ```
//!
//! `r` is the guest's result line (status, ILC and code, access id, TEID, r0, old PSW
//! address, in hex). `sig` is a hash of the access (address, size, key, PSW, control
//! registers, value): replaying a recording against a plan whose accesses changed is an
//! error, so a changed generator or scenario needs a new recording.
#![forbid(unsafe_code)]

use super::emulator::{Backend, RawResult};
use super::plan::Plan;
use super::{Checked, OracleError, RunRecord};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// A loaded recording.
#[derive(Debug, Default)]
pub struct Recording {
    runs: BTreeMap<(String, String), (RunRecord, BTreeMap<usize, u64>)>,
}

fn raw_line(r: &RawResult) -> String {
    format!(
        "{:x} {:08x} {:02x} {:016x} {:x} {:x}",
        r.status, r.pic, r.eaid, r.teid, r.r0, r.opsw
    )
}

fn parse_raw(s: &str) -> Option<RawResult> {
    let f: Vec<u64> = s
        .split_whitespace()
        .map(|x| u64::from_str_radix(x, 16).ok())
        .collect::<Option<Vec<_>>>()?;
    (f.len() == 6).then(|| RawResult {
        status: f[0] as u8,
        pic: f[1] as u32,
        eaid: f[2] as u8,
        teid: f[3],
        r0: f[4],
        opsw: f[5],
    })
}

/// Write the runs of `checked` as a recording.
pub fn write(
    path: &Path,
    checked: &[Checked],
    versions: &BTreeMap<Backend, String>,
) -> Result<(), OracleError> {
    let io = |e: std::io::Error| OracleError::Io(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    for c in checked {
        for b in Backend::ALL {
            let Some(run) = &c.runs[b.index()] else {
                continue;
            };
            let head = json!({
                "type": "run", "plan": c.plan.name, "backend": b.name(),
                "version": versions.get(&b).cloned().unwrap_or_default(),
                "facilities": run.facilities, "errors": run.errors,
                "seconds": (run.seconds * 1000.0).round() / 1000.0,
            });
            writeln!(f, "{head}").map_err(io)?;
            for (idx, r) in &run.results {
                let sig = c.plan.accesses.get(*idx).map_or(0, |a| a.signature());
                let line = json!({
                    "type": "access", "plan": c.plan.name, "backend": b.name(),
                    "idx": idx, "sig": format!("{sig:016x}"), "r": raw_line(r),
                });
                writeln!(f, "{line}").map_err(io)?;
            }
        }
    }
    f.flush().map_err(io)
}

impl Recording {
    /// Read a recording.
    pub fn load(path: &Path) -> Result<Self, OracleError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| OracleError::Io(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| OracleError::Record(format!("{}: {e}", path.display())))
    }

    /// Parse the text of a recording.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rec = Recording::default();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |what: &str| format!("line {}: {what}", n + 1);
            let v: Value = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
            let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            let key = (
                s("plan").ok_or_else(|| bad("no plan"))?,
                s("backend").ok_or_else(|| bad("no backend"))?,
            );
            match s("type").as_deref() {
                Some("run") => {
                    let run = RunRecord {
                        results: BTreeMap::new(),
                        errors: v["errors"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|e| e.as_str().map(String::from))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        facilities: v["facilities"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|e| e.as_u64().map(|n| n as u32))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        seconds: v["seconds"].as_f64().unwrap_or(0.0),
                    };
                    rec.runs.insert(key, (run, BTreeMap::new()));
                }
                Some("access") => {
                    let idx = v["idx"].as_u64().ok_or_else(|| bad("no idx"))? as usize;
                    let sig = s("sig")
                        .and_then(|x| u64::from_str_radix(&x, 16).ok())
                        .ok_or_else(|| bad("no sig"))?;
                    let r = s("r")
                        .and_then(|x| parse_raw(&x))
                        .ok_or_else(|| bad("bad r"))?;
                    let entry = rec
                        .runs
                        .get_mut(&key)
                        .ok_or_else(|| bad("access before its run line"))?;
                    entry.0.results.insert(idx, r);
                    entry.1.insert(idx, sig);
                }
                _ => return Err(bad("unknown type")),
            }
        }
        Ok(rec)
    }

    /// The recorded run of `plan` on `backend` (None if it was not recorded). Fails if
    /// the recorded accesses are not the plan's.
    pub fn runs_for(
        &self,
        plan: &Plan,
        backend: Backend,
    ) -> Result<Option<RunRecord>, OracleError> {
        let Some((run, sigs)) = self
            .runs
            .get(&(plan.name.clone(), backend.name().to_string()))
        else {
            return Ok(None);
        };
        for (idx, sig) in sigs {
            let ok = plan
                .accesses
                .get(*idx)
                .is_some_and(|a| a.signature() == *sig);
            if !ok {
                return Err(OracleError::Record(format!(
                    "{} on {}: access {idx} is not the recorded one; record again",
                    plan.name,
                    backend.name()
                )));
            }
        }
        Ok(Some(run.clone()))
    }

    /// The plans recorded, in name order.
    pub fn plan_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.runs.keys().map(|k| k.0.clone()).collect();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_lines_round_trip() {
        let r = RawResult {
            status: 1,
            pic: 0x0006_0011,
            eaid: 0xff,
            teid: 0x101800,
            r0: 0,
            opsw: 0x2198,
        };
        assert_eq!(parse_raw(&raw_line(&r)), Some(r));
    }
}
