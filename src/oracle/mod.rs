//! `s390-gaccess oracle`: compare the model with real CPU implementations.
//!
//! The scenario's machine (DAT tables from [`SpaceBuilder`](crate::dat::builder),
//! keys, memory) and its logical read/write memops of 1, 2, 4 or 8 bytes are turned
//! into a blob for a small freestanding s390x guest (`oracle/guest/`), which performs
//! each access as one load or store instruction with the PSW key = the memop key, the
//! vCPU's DAT, address-space and addressing modes and control registers, and prints
//! the outcome (interruption code, TEID, exception access id, data). The guest runs on
//! QEMU (TCG) and Hercules; each outcome is compared with the model's for the same
//! access, and differences are classified with the table of known departures
//! ([`compare::DEPARTURES`], also in `docs/conformance.md`).
//!
//! * [`plan`]: scenario → model run → guest ops and the accesses to compare;
//! * [`random`]: seeded random scenarios;
//! * [`emulator`], [`guest`], [`blob`]: running the guest;
//! * [`compare`]: classification, [`probe`]: "what if" runs of the model;
//! * [`record`]: recorded emulator outputs, replayed without emulators.
//!
//! Entry point for the binary: [`oracle_command`] with [`OracleArgs`].
#![forbid(unsafe_code)]

pub mod blob;
pub mod compare;
pub mod emulator;
pub mod guest;
pub mod machine;
pub mod plan;
pub mod probe;
pub mod random;
pub mod record;
pub mod report;

use emulator::{Backend, Emulators, RawResult};
use plan::Plan;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Errors that stop the oracle.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OracleError {
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The guest could not be built.
    #[error("building the oracle guest: {0}")]
    Build(String),
    /// An emulator could not be run.
    #[error("{0}")]
    Emulator(String),
    /// A scenario could not be turned into a plan.
    #[error("{0}")]
    Scenario(String),
    /// A recording does not fit the plan.
    #[error("recording: {0}")]
    Record(String),
}

/// Which emulators to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// QEMU (TCG) only.
    Qemu,
    /// Hercules only.
    Hercules,
    /// Both.
    Both,
}

impl BackendChoice {
    /// The backends chosen.
    pub fn backends(self) -> Vec<Backend> {
        match self {
            BackendChoice::Qemu => vec![Backend::Qemu],
            BackendChoice::Hercules => vec![Backend::Hercules],
            BackendChoice::Both => vec![Backend::Qemu, Backend::Hercules],
        }
    }
}

/// Arguments of `s390-gaccess oracle` (clap derive; the binary embeds it as a
/// subcommand: `Oracle(OracleArgs)`).
#[derive(Clone, Debug, clap::Args)]
#[command(about = "Compare the model's logical memop results with QEMU and Hercules")]
pub struct OracleArgs {
    /// Scenario files (.toml or .json); their logical read/write memops of 1, 2, 4 or 8
    /// bytes are compared.
    pub files: Vec<PathBuf>,
    /// Emulators to run.
    #[arg(long, value_enum, default_value = "both")]
    pub backend: BackendChoice,
    /// One JSON object per access, then a summary object.
    #[arg(long)]
    pub json: bool,
    /// Compare random scenarios made from this seed (instead of or besides FILEs).
    #[arg(long, value_name = "SEED")]
    pub random: Option<u64>,
    /// Number of random accesses.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub count: usize,
    /// Random accesses per scenario (one emulator run each).
    #[arg(long, default_value_t = 2500, value_name = "N")]
    pub batch: usize,
    /// Print every access, not only differences (random runs print differences only).
    #[arg(long, short)]
    pub verbose: bool,
    /// Write the emulators' outputs to this JSON-lines file.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Compare with outputs recorded by `--record` instead of running emulators.
    #[arg(long, value_name = "FILE", conflicts_with = "record")]
    pub replay: Option<PathBuf>,
    /// Save the random scenarios as JSON files into this directory.
    #[arg(long, value_name = "DIR")]
    pub save_scenarios: Option<PathBuf>,
    /// Cache directory for the guest build.
    #[arg(long, value_name = "DIR")]
    pub build_dir: Option<PathBuf>,
    /// Tool prefix of the s390x cross compiler.
    #[arg(long, default_value = "s390x-linux-gnu-", value_name = "PREFIX")]
    pub cross: String,
    /// QEMU executable.
    #[arg(long, default_value = "qemu-system-s390x", value_name = "EXE")]
    pub qemu: String,
    /// Hercules executable.
    #[arg(long, default_value = "hercules", value_name = "EXE")]
    pub hercules: String,
}

/// One emulator run of a plan (or its recording).
#[derive(Clone, Debug, Default)]
pub struct RunRecord {
    /// Access index → raw result.
    pub results: BTreeMap<usize, RawResult>,
    /// Problems of the run.
    pub errors: Vec<String>,
    /// STFLE facility numbers.
    pub facilities: Vec<u32>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// A plan with its runs and comparisons.
#[derive(Debug)]
pub struct Checked {
    /// The plan.
    pub plan: Plan,
    /// Per backend ([`Backend::index`]), if run.
    pub runs: [Option<RunRecord>; 2],
    /// Per access and backend.
    pub comparisons: Vec<[Option<compare::Comparison>; 2]>,
}

/// Where the guest is built: cache directory and cross-tool prefix. Images are built
/// per base address on first use.
#[derive(Debug)]
pub struct GuestSource {
    /// Cache directory.
    pub dir: PathBuf,
    /// Tool prefix (`s390x-linux-gnu-`).
    pub cross: String,
    images: std::cell::RefCell<BTreeMap<u64, guest::GuestImage>>,
}

impl GuestSource {
    /// A source building into `dir` with `cross`.
    pub fn new(dir: PathBuf, cross: &str) -> Self {
        Self {
            dir,
            cross: cross.to_string(),
            images: Default::default(),
        }
    }

    /// The guest linked for `base`.
    pub fn image(&self, base: u64) -> Result<guest::GuestImage, OracleError> {
        if let Some(i) = self.images.borrow().get(&base) {
            return Ok(i.clone());
        }
        let i = guest::build(&self.dir, &self.cross, base)?;
        self.images.borrow_mut().insert(base, i.clone());
        Ok(i)
    }
}

/// Run a plan's blob on one backend.
pub fn run_plan(
    plan: &Plan,
    backend: Backend,
    emus: &Emulators,
    guest: &GuestSource,
) -> Result<RunRecord, OracleError> {
    let image = guest.image(plan.base)?;
    let (blob, map) = plan.blob(backend);
    let out = emus.run(
        backend,
        &image,
        &blob,
        plan.blob_addr,
        plan.memory_mib(backend),
    )?;
    let mut results = BTreeMap::new();
    for (op, r) in &out.access {
        if let Some(Some(a)) = map.get(*op) {
            results.insert(*a, *r);
        }
    }
    Ok(RunRecord {
        results,
        errors: out.errors.clone(),
        facilities: out.facility_numbers(),
        seconds: out.elapsed.as_secs_f64(),
    })
}

/// Compare a plan with its runs, tracking frames whose contents diverged.
pub fn check(plan: Plan, runs: [Option<RunRecord>; 2]) -> Checked {
    let mut comparisons: Vec<[Option<compare::Comparison>; 2]> =
        vec![[None, None]; plan.accesses.len()];
    for b in Backend::ALL {
        let Some(run) = &runs[b.index()] else {
            continue;
        };
        let larger = plan.memory_mib(b) << 20 > plan.memory;
        let mut tainted: BTreeSet<u64> = BTreeSet::new();
        for a in &plan.accesses {
            let v = &a.variants;
            let frames: Vec<u64> = v
                .probes()
                .iter()
                .map(|p| p.target)
                .chain([v.kernel.target2])
                .flatten()
                .map(|t| t & !0xfff)
                .collect();
            // Frames read as DAT tables by any of the walks: a store that went
            // differently may have changed a table (a data frame can be a page table
            // where an FC bit is ignored).
            let table_frames: Vec<u64> = v
                .probes()
                .iter()
                .flat_map(|p| p.table_frames().iter().copied())
                .collect();
            let t = (!a.store && frames.iter().any(|f| tainted.contains(f)))
                || table_frames.iter().any(|f| tainted.contains(f));
            let c = compare::compare(b, plan.base, a, run.results.get(&a.idx), t, larger);
            if a.store {
                // Where may model and emulator now hold different bytes? Nowhere if
                // neither stored; everywhere the access could go if only one did or
                // the emulator gave no result; where the emulator may have stored
                // instead (another translation) if both did.
                let model_stored = a.model.code == 0;
                match (&c.verdict, &c.emu) {
                    (compare::Verdict::Skipped(_), _) if model_stored => {
                        tainted.extend(frames.iter().copied())
                    }
                    (compare::Verdict::Skipped(_), _) => {}
                    (_, Some(e)) if (e.code == 0) != model_stored => {
                        tainted.extend(frames.iter().copied())
                    }
                    (_, Some(e)) if e.code == 0 => {
                        let k = v.kernel.target.map(|t| t & !0xfff);
                        tainted.extend(frames.iter().copied().filter(|f| Some(*f) != k));
                    }
                    // A store across a page boundary that failed on the emulator
                    // may have been terminated after storing into the first page
                    // (the kernel stores nothing when translation fails, §11 item 8).
                    (_, Some(_)) if v.fragments.is_some() => tainted.extend(frames.iter().copied()),
                    (_, Some(_)) => {}
                    (_, None) => tainted.extend(frames.iter().copied()),
                }
            }
            comparisons[a.idx][b.index()] = Some(c);
        }
    }
    Checked {
        plan,
        runs,
        comparisons,
    }
}

/// Load scenario files and make plans; errors name the file.
pub fn plans_from_files(files: &[PathBuf]) -> Result<Vec<Plan>, OracleError> {
    let mut out = Vec::new();
    for f in files {
        let sc = crate::scenario::load(f).map_err(|e| OracleError::Scenario(e.to_string()))?;
        let mut p =
            plan::build(&sc).map_err(|e| OracleError::Scenario(format!("{}: {e}", f.display())))?;
        p.name = f.display().to_string();
        out.push(p);
    }
    Ok(out)
}

/// Random plans: `count` accesses in batches of `batch`.
pub fn random_plans(
    seed: u64,
    count: usize,
    batch: usize,
    save: Option<&std::path::Path>,
) -> Result<Vec<Plan>, OracleError> {
    let batch = batch.max(1);
    let mut out = Vec::new();
    let mut done = 0;
    let mut i = 0;
    while done < count {
        let n = batch.min(count - done);
        let (name, text) = random::batch(seed, i, n);
        if let Some(dir) = save {
            std::fs::create_dir_all(dir).map_err(|e| OracleError::Io(e.to_string()))?;
            std::fs::write(dir.join(format!("{name}.json")), &text)
                .map_err(|e| OracleError::Io(e.to_string()))?;
        }
        let sc = random::parse(&name, &text).map_err(OracleError::Scenario)?;
        let p = plan::build(&sc).map_err(|e| OracleError::Scenario(format!("{name}: {e}")))?;
        out.push(p);
        done += n;
        i += 1;
    }
    Ok(out)
}

/// Run (or replay) and compare every plan.
pub fn run_all(
    plans: Vec<Plan>,
    backends: &[Backend],
    emus: &Emulators,
    guest: Option<&GuestSource>,
    replay: Option<&record::Recording>,
) -> Result<Vec<Checked>, OracleError> {
    let mut out = Vec::new();
    for plan in plans {
        let mut runs: [Option<RunRecord>; 2] = [None, None];
        for &b in backends {
            let r = match (replay, guest) {
                (Some(rec), _) => rec.runs_for(&plan, b)?,
                (None, Some(g)) => Some(run_plan(&plan, b, emus, g)?),
                (None, None) => None,
            };
            runs[b.index()] = r;
        }
        out.push(check(plan, runs));
    }
    Ok(out)
}

/// `s390-gaccess oracle`: returns the exit status (0: every difference is a known
/// departure; 1: unknown differences or missing results; 2: the oracle could not run).
pub fn oracle_command(args: &OracleArgs) -> i32 {
    match oracle_main(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("s390-gaccess oracle: {e}");
            2
        }
    }
}

fn oracle_main(args: &OracleArgs) -> Result<i32, OracleError> {
    if args.files.is_empty() && args.random.is_none() {
        return Err(OracleError::Scenario(
            "give scenario files or --random SEED".into(),
        ));
    }
    let emus = Emulators {
        qemu: args.qemu.clone(),
        hercules: args.hercules.clone(),
        ..Emulators::default()
    };
    let mut backends = args.backend.backends();
    let replay = match &args.replay {
        Some(p) => Some(record::Recording::load(p)?),
        None => None,
    };
    let mut versions = BTreeMap::new();
    let guest = if replay.is_none() {
        backends.retain(|&b| {
            let ok = emus.available(b);
            if !ok {
                eprintln!(
                    "s390-gaccess oracle: {} ({}) is not installed; see oracle/install.sh",
                    b.name(),
                    emus.exe(b)
                );
            } else {
                versions.insert(b, emus.version(b));
            }
            ok
        });
        if backends.is_empty() {
            return Err(OracleError::Emulator("no emulator to run".into()));
        }
        let dir = args
            .build_dir
            .clone()
            .unwrap_or_else(guest::default_build_dir);
        if !guest::compiler_available(&args.cross) {
            return Err(OracleError::Build(format!(
                "{}gcc is not installed; see oracle/install.sh",
                args.cross
            )));
        }
        Some(GuestSource::new(dir, &args.cross))
    } else {
        None
    };
    let mut plans = plans_from_files(&args.files)?;
    if let Some(seed) = args.random {
        plans.extend(random_plans(
            seed,
            args.count,
            args.batch,
            args.save_scenarios.as_deref(),
        )?);
    }
    let start = std::time::Instant::now();
    let checked = run_all(plans, &backends, &emus, guest.as_ref(), replay.as_ref())?;
    let elapsed = start.elapsed();
    if let Some(path) = &args.record {
        record::write(path, &checked, &versions)?;
    }
    let summary = report::Summary::of(&checked, &backends);
    let show_all = args.verbose || args.random.is_none();
    if args.json {
        report::print_json(&checked, &backends, &summary);
    } else {
        report::print_text(&checked, &backends, show_all, &summary, elapsed, &versions);
    }
    Ok(summary.exit_code())
}
