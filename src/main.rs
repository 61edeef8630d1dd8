//! The `s390-gaccess` command-line tool: run scenario files (scenario-format.md), explain
//! one guest translation step by step, or validate scenario files.
//!
//! Exit status: 0 when everything held, 1 when an expectation failed, 2 when a file
//! could not be read or is invalid (or the command line is wrong).
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use s390_gaccess::exception::AccessMode;
use s390_gaccess::keys::AccessKey;
use s390_gaccess::scenario::explain::explain;
use s390_gaccess::scenario::report::{Table, diff, json_line};
use s390_gaccess::scenario::run::{self, Loaded};
use s390_gaccess::scenario::{Profile, value};

#[derive(Parser)]
#[command(
    name = "s390-gaccess",
    version,
    about = "A bit-exact model of how Linux KVM accesses s390 guest memory",
    long_about = "A bit-exact model of how Linux KVM accesses s390 guest memory: DAT, \
                  prefixing, access-register translation, storage keys and the \
                  KVM_S390_MEM_OP ioctl. Scenario files (TOML or JSON) describe a guest \
                  and the steps to run against it; see scenario-format.md.\n\n\
                  Exit status: 0 all expectations held, 1 an expectation failed, \
                  2 a file could not be read or is invalid."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Kernel behaviour to model (they differ where kernel-semantics.md §6.4 says).
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProfileArg {
    /// The 2026 gmap rewrite and later.
    #[value(name = "linux-7.0")]
    Linux70,
    /// 6.3 up to the rewrite.
    #[value(name = "linux-6.3")]
    Linux63,
}

impl From<ProfileArg> for Profile {
    fn from(p: ProfileArg) -> Self {
        match p {
            ProfileArg::Linux70 => Profile::Linux70,
            ProfileArg::Linux63 => Profile::Linux63,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run scenario files and check every step's expectations.
    ///
    /// Prints one line per step: number, what ran, the return value with its name, the
    /// exception with its TEID decoded, PASS/FAIL. Failing expectations are shown as a
    /// diff on standard error.
    Run {
        /// Scenario files (.toml or .json).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print JSON Lines (one object per step, as scenario-format.md "Results"
        /// says) instead of the table. With several files each object also has "file".
        #[arg(long)]
        json: bool,
        /// Override the scenario's kernel profile.
        #[arg(long, value_enum)]
        profile: Option<ProfileArg>,
    },
    /// Explain one translation step by step on a scenario's machine.
    ///
    /// Shows the effective address, the ASCE selection (with access-register
    /// translation), every table entry read with its address, raw value, decoded fields
    /// and checks, prefixing, the key check, and the result or the exception with its
    /// TEID decoded.
    Translate {
        /// Scenario file (.toml or .json) describing the machine.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The logical address ("0x1000", "4096", "0b1", "0xffff_f000").
        #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
        gaddr: u64,
        /// Translate for a store (default: fetch).
        #[arg(long)]
        store: bool,
        /// Access-register number (used in access-register mode).
        #[arg(long, value_name = "N", default_value_t = 0)]
        ar: u8,
        /// Access key 0..15 (0: no key check).
        #[arg(long, value_name = "K", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=15))]
        key: u8,
        /// Run the scenario's steps 1..=N first, then translate on the resulting state.
        #[arg(long, value_name = "N")]
        after_step: Option<usize>,
        /// Override the scenario's kernel profile (matters for the steps run first).
        #[arg(long, value_enum)]
        profile: Option<ProfileArg>,
    },
    /// Validate scenario files without running them (reading and machine set-up).
    Check {
        /// Scenario files (.toml or .json).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Run a scenario's logical accesses on QEMU and Hercules and compare with the model.
    ///
    /// Prints the model's result beside each emulator's, classifies every difference
    /// with the table of known departures (docs/conformance.md) and exits non-zero on
    /// a difference that is not known. See oracle/README.md.
    Oracle(s390_gaccess::oracle::OracleArgs),
    /// Run the headline performance measurements (at most about 15 seconds).
    ///
    /// Translation through each designation type, cache hits, memops of 8 bytes and
    /// 64 KiB beside a plain memcpy of the same size, and a sparse 1 TiB guest.
    /// docs/performance.md explains the method.
    Bench {
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
}

/// An exit status from a library command, kept within 0..=255.
fn clamp_status(status: i32) -> u8 {
    u8::try_from(status).unwrap_or(2)
}

fn parse_addr(s: &str) -> Result<u64, String> {
    let v = value::parse_integer(s).map_err(|e| e.message().to_owned())?;
    u64::try_from(v).map_err(|_| format!("{s} is not a 64-bit address"))
}

/// Standard output that stops the program quietly when the reader went away.
struct Out {
    status: u8,
}

impl Out {
    fn print(&self, s: &str) {
        let mut o = std::io::stdout().lock();
        if o.write_all(s.as_bytes()).and_then(|()| o.flush()).is_err() {
            std::process::exit(i32::from(self.status));
        }
    }
}

fn eprint(s: &str) {
    let _ = std::io::stderr().lock().write_all(s.as_bytes());
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Run {
            files,
            json,
            profile,
        } => cmd_run(&files, json, profile.map(Profile::from)),
        Command::Translate {
            file,
            gaddr,
            store,
            ar,
            key,
            after_step,
            profile,
        } => cmd_translate(
            &file,
            gaddr,
            store,
            ar,
            key,
            after_step,
            profile.map(Profile::from),
        ),
        Command::Check { files } => cmd_check(&files),
        Command::Oracle(args) => clamp_status(s390_gaccess::oracle::oracle_command(&args)),
        Command::Bench { json } => clamp_status(s390_gaccess::perf::bench_command(json)),
    };
    ExitCode::from(status)
}

fn load(file: &Path, profile: Option<Profile>) -> Result<Loaded, String> {
    let mut l = run::load(file).map_err(|e| format!("s390-gaccess: {e}\n"))?;
    if let Some(p) = profile {
        l.machine.profile = p;
    }
    Ok(l)
}

fn cmd_run(files: &[PathBuf], json: bool, profile: Option<Profile>) -> u8 {
    let mut out = Out { status: 0 };
    let several = files.len() > 1;
    for (n, path) in files.iter().enumerate() {
        let file = path.display().to_string();
        let Loaded {
            scenario,
            mut machine,
        } = match load(path, profile) {
            Ok(l) => l,
            Err(e) => {
                eprint(&e);
                out.status = 2;
                continue;
            }
        };
        let mut table = Table::new();
        let mut diffs = String::new();
        let mut failed = 0usize;
        for (i, step) in scenario.steps.iter().enumerate() {
            let r = machine.run_step(i + 1, step);
            if !r.pass {
                failed += 1;
            }
            if json {
                let mut line = json_line(&r, several.then_some(file.as_str()));
                line.push('\n');
                out.print(&line);
            } else {
                table.push(step, &r);
                if !r.pass {
                    diffs.push_str(&diff(&file, step, &r));
                }
            }
        }
        if failed > 0 {
            out.status = out.status.max(1);
        }
        if !json {
            let steps = scenario.steps.len();
            let mut text = String::new();
            if n > 0 {
                text.push('\n');
            }
            text.push_str(&format!(
                "{file}: {} ({}), {steps} step{}\n",
                scenario.name,
                machine.profile.as_str(),
                if steps == 1 { "" } else { "s" }
            ));
            text.push_str(&table.render());
            out.print(&text);
            eprint(&diffs);
            out.print(&format!(
                "{file}: {} passed, {failed} failed\n",
                steps - failed
            ));
        }
    }
    out.status
}

fn cmd_translate(
    path: &Path,
    gaddr: u64,
    store: bool,
    ar: u8,
    key: u8,
    after_step: Option<usize>,
    profile: Option<Profile>,
) -> u8 {
    let out = Out { status: 0 };
    let Loaded {
        scenario,
        mut machine,
    } = match load(path, profile) {
        Ok(l) => l,
        Err(e) => {
            eprint(&e);
            return 2;
        }
    };
    let file = path.display();
    let mut text = format!("{file}: {} ({})\n", scenario.name, machine.profile.as_str());
    if let Some(n) = after_step {
        if n > scenario.steps.len() {
            eprint(&format!(
                "s390-gaccess: --after-step {n}: {file} has only {} step{}\n",
                scenario.steps.len(),
                if scenario.steps.len() == 1 { "" } else { "s" }
            ));
            return 2;
        }
        let failed = scenario
            .steps
            .iter()
            .take(n)
            .enumerate()
            .filter(|(i, s)| !machine.run_step(i + 1, s).pass)
            .count();
        text.push_str(&format!(
            "after running steps 1..={n}{}\n",
            if failed > 0 {
                format!(" ({failed} of them failed their expectations)")
            } else {
                String::new()
            }
        ));
    }
    text.push('\n');
    let mode = if store {
        AccessMode::Store
    } else {
        AccessMode::Fetch
    };
    // The range of --key is checked by the argument parser.
    let key = AccessKey::new(key).unwrap_or(AccessKey::ZERO);
    text.push_str(&explain(
        &machine.vm,
        &machine.vcpu,
        &machine.spaces,
        gaddr,
        ar,
        mode,
        key,
    ));
    out.print(&text);
    0
}

fn cmd_check(files: &[PathBuf]) -> u8 {
    let out = Out { status: 0 };
    let mut status = 0;
    for path in files {
        match load(path, None) {
            Ok(l) => out.print(&format!(
                "{}: ok ({}, {} step{})\n",
                path.display(),
                l.scenario.name,
                l.scenario.steps.len(),
                if l.scenario.steps.len() == 1 { "" } else { "s" }
            )),
            Err(e) => {
                eprint(&e);
                status = 2;
            }
        }
    }
    status
}
