//! The fuzz harnesses of `fuzz/` run by `cargo test` (docs/robustness.md).
//!
//! The harness code is included from `fuzz/src/` unchanged, so these tests run exactly
//! what the fuzz targets run, without libFuzzer:
//! * every crash a fuzz target found becomes a test below with its minimized input
//!   inline, plus the same case written by hand (the inline bytes depend on the
//!   harness's input layout; the hand-written case does not);
//! * `fuzz/seeds/TARGET/*` are small inputs chosen from the fuzz corpora to cover the
//!   targets' outcome classes (every op, return value and CHECK_ONLY twin kind), run on
//!   every `cargo test`;
//! * a deterministic pseudo-random smoke run of each harness (`FUZZ_SMOKE_RUNS`,
//!   default 200 inputs per target);
//! * `FUZZ_REPLAY=PATH FUZZ_TARGET=memop_raw|tlb|scenario` replays a file or a
//!   directory (a crash artifact, a whole corpus) through one harness.

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn run_target(target: &str, data: &[u8]) {
    match target {
        "memop_raw" => {
            let _ = harness::memop_raw::run(data);
        }
        "tlb" => harness::tlb::run(data),
        "scenario" => harness::scenario::run(data),
        other => panic!("unknown fuzz target {other:?}"),
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => return Vec::new(),
    };
    v.retain(|p| p.is_file());
    v.sort();
    v
}

fn seeds(target: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    for f in files(&dir) {
        let data = std::fs::read(&f).expect("seed file");
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_target(target, &data)));
        assert!(r.is_ok(), "seed {} failed", f.display());
    }
}

/// `memop_raw` crash (fuzz run 2, 2026-11-28): SIDA_READ on a protected vCPU whose
/// SIDA bytes are shorter than `sida_offset` panicked slicing `vcpu.sida` (§3.8: the
/// SIDA is `sida_size` bytes, the missing ones read as zero). Minimized input: control
/// byte 0xDE (protected vCPU, empty SIDA, linux-6.3), then the struct and steering.
#[test]
fn crash_sida_read_past_the_sida_bytes() {
    const INPUT: [u8; 75] = [
        0xde, 0xc9, 0x33, 0x67, 0xbf, 0xc7, 0x0f, 0x15, 0x55, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0xff, 0xff, 0x34, 0xda, 0x86, 0x9c, 0xd8, 0xb6, 0x67, 0xcb, 0x81, 0x86, 0x2e,
        0x06, 0xe2, 0xb3, 0x45, 0x4e, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff,
        0x61, 0xb5, 0x05, 0xf7, 0x86, 0xd5, 0xda, 0x82, 0xfd, 0xfe, 0xff, 0x00, 0x39, 0x3b, 0x3c,
    ];
    let s = harness::memop_raw::run(&INPUT).expect("a guest");
    // The user buffer is unmapped: -EFAULT after the SIDA bytes were gathered.
    assert_eq!((s.on_vm, s.op, s.ret), (false, 2, -14));
}

/// The same bug by hand: a protected vCPU with an empty SIDA buffer (`Vcpu::new()`),
/// SIDA_READ of 8 bytes at offset 0x100 returns 0 and zeros (§3.8).
#[test]
fn sida_read_beyond_the_stored_bytes_reads_zeros() {
    use s390_gaccess::memop::MemOp;
    let vm = s390_gaccess::vm::Vm::with_memory(1 << 20).expect("memory");
    let mut vcpu = s390_gaccess::vcpu::Vcpu::new();
    vcpu.protected = true;
    vcpu.sida = vec![0xAB; 16];
    for (offset, want) in [
        (0x100u32, vec![0u8; 8]),
        (12, vec![0xAB, 0xAB, 0xAB, 0xAB, 0, 0, 0, 0]),
    ] {
        let r = MemOp::sida_read(offset, 8).run_vcpu(&vm, &mut vcpu);
        assert_eq!((r.ret, r.data), (0, want), "offset {offset:#x}");
    }
    vcpu.sida.clear();
    let r = MemOp::sida_read(0xFF8, 8).run_vcpu(&vm, &mut vcpu);
    assert_eq!((r.ret, r.data), (0, vec![0u8; 8]));
}

#[test]
fn memop_raw_seeds() {
    seeds("memop_raw");
}

#[test]
fn tlb_seeds() {
    seeds("tlb");
}

#[test]
fn scenario_seeds() {
    seeds("scenario");
}

/// Xorshift bytes for the smoke runs.
fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn smoke_runs() -> u64 {
    std::env::var("FUZZ_SMOKE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

#[test]
fn memop_raw_smoke() {
    for i in 0..smoke_runs() {
        run_target(
            "memop_raw",
            &pseudo_random(i, 96 + (i as usize * 131) % 1500),
        );
    }
}

#[test]
fn tlb_smoke() {
    for i in 0..smoke_runs() / 4 {
        run_target(
            "tlb",
            &pseudo_random(1 << 32 | i, 200 + (i as usize * 97) % 1800),
        );
    }
}

/// The shipped examples, cut and spliced at pseudo-random places, as TOML and JSON.
#[test]
fn scenario_smoke() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let texts: Vec<Vec<u8>> = files(&dir)
        .into_iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    for i in 0..smoke_runs() {
        let r = pseudo_random(2 << 32 | i, 16);
        let noise = pseudo_random(3 << 32 | i, (r[0] % 16) as usize);
        let mut input = match texts.get(r[1] as usize % texts.len().max(1)) {
            Some(t) => t.clone(),
            None => Vec::new(),
        };
        let at = (u16::from_le_bytes([r[2], r[3]]) as usize).min(input.len());
        let cut = (r[4] as usize).min(input.len() - at);
        input.splice(at..at + cut, noise);
        run_target("scenario", &input);
    }
}

/// `FUZZ_REPLAY=PATH [FUZZ_TARGET=memop_raw]`: replay a file or every file of a
/// directory through a harness (does nothing without `FUZZ_REPLAY`).
#[test]
fn replay() {
    let Ok(path) = std::env::var("FUZZ_REPLAY") else {
        return;
    };
    let target = std::env::var("FUZZ_TARGET").unwrap_or_else(|_| "memop_raw".into());
    let path = PathBuf::from(path);
    let list = if path.is_dir() {
        files(&path)
    } else {
        vec![path]
    };
    for f in &list {
        eprintln!("replaying {}", f.display());
        run_target(&target, &std::fs::read(f).expect("input file"));
    }
    eprintln!("{} inputs replayed through {target}", list.len());
}
