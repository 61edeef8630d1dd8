//! Headline performance measurements for the `bench` subcommand
//! ([`bench_command`]): the translation hot path, memops end to end, the `memcpy`
//! baseline and a sparse 1 TiB guest, each against its target (docs/performance.md).
//!
//! The full matrix lives in the criterion benches (`cargo bench`); this module is a
//! quick self-contained check that runs in about 10 seconds. Each measurement runs
//! batches of calls for a fixed time and reports the median and the minimum time per
//! call over the batches: on a shared machine the minimum is the better estimate of the
//! cost, the median shows the noise. Results are for the machine they run on; nothing
//! here asserts a time.
#![forbid(unsafe_code)]

use crate::access::{Buffer, access_absolute};
use crate::addr::AbsoluteAddress;
use crate::dat::builder::{LeafFlags, SpaceBuilder};
use crate::dat::walk::{WalkContext, walk_referencing};
use crate::dat::{Asce, DesignationType, FrameSize};
use crate::exception::AccessMode;
use crate::keys::{AccessKey, StorageKey};
use crate::memop::abi::{
    KVM_S390_MEMOP_F_SKEY_PROTECTION, KVM_S390_MEMOP_LOGICAL_READ, KVM_S390_MEMOP_LOGICAL_WRITE,
};
use crate::memop::{KvmS390MemOp, Profile, UserMemory, vcpu_mem_op};
use crate::translate::{translate_fragment, walk_context};
use crate::vcpu::{Psw, Vcpu, cr0};
use crate::vm::{Facilities, Vm};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// One timed operation.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Measurement {
    /// Short name.
    pub name: &'static str,
    /// What is measured.
    pub what: &'static str,
    /// Median time per call over the batches, nanoseconds.
    pub median_ns: f64,
    /// Minimum time per call over the batches, nanoseconds.
    pub min_ns: f64,
    /// The target, if there is one: an upper bound in nanoseconds.
    pub target_ns: Option<f64>,
    /// Whether the minimum meets the target (`None` without a target).
    pub met: Option<bool>,
}

/// The sparse-guest measurement.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SparseGuest {
    /// Guest size in bytes.
    pub size: u64,
    /// Time to create the VM, milliseconds.
    pub create_ms: f64,
    /// Number of random 4 KiB accesses (absolute writes, key 0).
    pub accesses: u32,
    /// Time of the first use of storage keys after the accesses (`Vm::enable_keys`,
    /// which resets every key of the guest to 0), milliseconds.
    pub enable_keys_ms: f64,
    /// Growth of the process's resident set over creation and accesses, bytes (None
    /// where /proc/self/statm is not readable).
    pub resident_growth: Option<u64>,
    /// The process's resident set afterwards, bytes.
    pub resident_after: Option<u64>,
}

/// Everything [`run`] measured.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Report {
    /// The timed operations.
    pub measurements: Vec<Measurement>,
    /// 64 KiB logical read memop bandwidth / memcpy bandwidth (minimum times).
    pub read_64k_memcpy_ratio: f64,
    /// 64 KiB logical write memop bandwidth / memcpy bandwidth (minimum times).
    pub write_64k_memcpy_ratio: f64,
    /// The sparse guest.
    pub sparse: SparseGuest,
    /// Total wall time of the run, seconds.
    pub seconds: f64,
}

/// Time `f`: batches of about 1 ms for `budget`; per-call median and minimum in ns.
#[inline(always)]
fn time(budget: Duration, mut f: impl FnMut()) -> (f64, f64) {
    // Calibrate: iterations per ~1 ms batch.
    let mut n: u64 = 1;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        if t.elapsed() >= Duration::from_micros(500) || n >= 1 << 30 {
            break;
        }
        n *= 2;
    }
    let mut per_call = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || per_call.len() < 5 {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        per_call.push(t.elapsed().as_nanos() as f64 / n as f64);
    }
    per_call.sort_by(f64::total_cmp);
    (per_call[per_call.len() / 2], per_call[0])
}

const TABLES: u64 = 0x10_0000;
const DATA: u64 = 0x100_0000;
/// Every index the region-first walk uses is non-zero.
const VA_RF: u64 = (5 << 53) | (6 << 42) | (7 << 31) | (8 << 20);
const VA_SEG: u64 = 8 << 20;
/// What [`Fixture::call`] returns for a translation that failed: the timed
/// translations all yield `DATA + 0x9AC`, never 0 (0 keeps the harness's select a
/// zeroing one: `u64::MAX` cost the walk loops 4-5 instructions).
const FAILED: u64 = 0;

/// A guest with `dt` tables mapping 16 pages (4 KiB) from `va` to `DATA`, keys ACC 5.
fn guest(dt: DesignationType, va: u64) -> (Vm, Vcpu) {
    let vm = Vm::new(&[(0, 64 << 20)], Facilities::default_set()).expect("guest memory");
    let asce = {
        let mut b = SpaceBuilder::new(vm.storage(), dt, TABLES, 3, 0).expect("tables");
        b.map(va, DATA, 16 * 4096, FrameSize::Size4K, LeafFlags::default())
            .expect("mapping");
        b.asce()
    };
    vm.enable_keys();
    for i in 0..16 {
        vm.set_storage_key(
            AbsoluteAddress(DATA + i * 4096),
            StorageKey::new(5, false, false, false),
        )
        .expect("frame in memory");
    }
    let mut vcpu = Vcpu::new();
    vcpu.psw.mask |= Psw::DAT;
    vcpu.cr[0] |= cr0::EDAT;
    vcpu.cr[1] = asce.0;
    (vm, vcpu)
}

fn resident() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The guests and buffers the timed operations use.
struct Fixture {
    vm_rf: Vm,
    cpu_rf: Vcpu,
    vm_seg: Vm,
    cpu_seg: Vcpu,
    asce_rf: Asce,
    asce_seg: Asce,
    ctx_rf: WalkContext,
    ctx_seg: WalkContext,
    read8: KvmS390MemOp,
    read64: KvmS390MemOp,
    write64: KvmS390MemOp,
    buf8: [u8; 8],
    buf: Vec<u8>,
    src: Vec<u8>,
    dst: Vec<u8>,
}

/// The timed operations: name, description, target (ns). [`Fixture::call`] runs
/// operation `i` of this table.
const OPS: [(&str, &str, Option<f64>); 12] = [
    // The targets (docs/performance.md) are for a translation with its walk context
    // given, as an access translates its pages: the `-engine` and `cache-hit-lookup`/
    // `-address` rows. The `translate_fragment` rows also build the context from the
    // vCPU (facilities, CR0, prefix) on every call, which no target covers.
    (
        "walk-region-first-4k",
        "translate_fragment, cache off: walk context built per call, region-first ASCE, 5 table reads, R set",
        None,
    ),
    (
        "walk-segment-4k",
        "translate_fragment, cache off: walk context built per call, segment-table ASCE, 2 table reads, R set",
        None,
    ),
    (
        "walk-region-first-engine",
        "walk::walk_referencing, context given (cache off): region-first, 5 table reads, R set",
        Some(10.0),
    ),
    (
        "walk-segment-engine",
        "walk::walk_referencing, context given (cache off): segment table, 2 table reads, R set",
        Some(5.0),
    ),
    (
        "cache-hit-fragment",
        "translate_fragment, cache hit (region-first 4K): walk context built per call, lookup, result",
        None,
    ),
    (
        "cache-hit-lookup",
        "TranslationCache::translate, hit, walk context given: the whole Translation",
        Some(2.0),
    ),
    (
        "cache-hit-address",
        "TranslationCache::translate_address, hit, walk context given: as accesses use it",
        Some(2.0),
    ),
    (
        "memop-read-8b-key",
        "vcpu_mem_op LOGICAL_READ 8 B, SKEY key 5, region-first 4K, cache on",
        Some(40.0),
    ),
    (
        "memop-read-64k-key",
        "vcpu_mem_op LOGICAL_READ 64 KiB, SKEY key 5, region-first 4K, cache on",
        None,
    ),
    (
        "memop-write-64k-key",
        "vcpu_mem_op LOGICAL_WRITE 64 KiB, SKEY key 5, region-first 4K, cache on",
        None,
    ),
    (
        "memcpy-64k",
        "copy_from_slice of 64 KiB between two host buffers (baseline)",
        None,
    ),
    (
        "empty",
        "the measurement loop alone (an empty call), to subtract by eye",
        None,
    ),
];

impl Fixture {
    fn new() -> Self {
        let (vm_rf, cpu_rf) = guest(DesignationType::RegionFirst, VA_RF);
        let (vm_seg, cpu_seg) = guest(DesignationType::Segment, VA_SEG);
        let asce_rf = Asce(cpu_rf.cr[1]);
        let asce_seg = Asce(cpu_seg.cr[1]);
        let ctx_rf = walk_context(&vm_rf, &cpu_rf, asce_rf, AccessMode::Fetch);
        let ctx_seg = walk_context(&vm_seg, &cpu_seg, asce_seg, AccessMode::Fetch);
        let mut read8 = KvmS390MemOp::new(KVM_S390_MEMOP_LOGICAL_READ, VA_RF + 0x9AC, 8);
        read8.set_flags(KVM_S390_MEMOP_F_SKEY_PROTECTION);
        read8.set_key(5);
        let mut read64 = KvmS390MemOp::new(KVM_S390_MEMOP_LOGICAL_READ, VA_RF, 65536);
        read64.set_flags(KVM_S390_MEMOP_F_SKEY_PROTECTION);
        read64.set_key(5);
        let mut write64 = read64;
        write64.set_op(KVM_S390_MEMOP_LOGICAL_WRITE);
        Self {
            vm_rf,
            cpu_rf,
            vm_seg,
            cpu_seg,
            asce_rf,
            asce_seg,
            ctx_rf,
            ctx_seg,
            read8,
            read64,
            write64,
            buf8: [0; 8],
            buf: vec![0; 65536],
            src: vec![0x5a; 65536],
            dst: vec![0; 65536],
        }
    }

    /// Set the vCPUs' caches as operation `op` needs them.
    fn prepare(&mut self, op: &str) {
        let off = matches!(op, "walk-region-first-4k" | "walk-segment-4k");
        self.cpu_rf.tlb.set_enabled(!off);
        self.cpu_seg.tlb.set_enabled(!off);
    }

    /// Time operation `op` with [`time`]. Each arm passes a constant, so every
    /// operation gets its own loop with the dispatch folded away: the timed loop holds
    /// the operation and nothing else.
    fn time_op(&mut self, op: usize, budget: Duration) -> (f64, f64) {
        macro_rules! arms {
            ($($n:literal)*) => {
                match op {
                    $($n => time(budget, || { black_box(self.call($n)); }),)*
                    _ => time(budget, || { black_box(self.call(11)); }),
                }
            };
        }
        arms!(0 1 2 3 4 5 6 7 8 9 10)
    }

    /// Run operation `op` `n` times (for profiling), with the same folded dispatch.
    fn repeat_op(&mut self, op: usize, n: u64) {
        macro_rules! arms {
            ($($n:literal)*) => {
                match op {
                    $($n => for _ in 0..n { black_box(self.call($n)); },)*
                    _ => for _ in 0..n { black_box(self.call(11)); },
                }
            };
        }
        arms!(0 1 2 3 4 5 6 7 8 9 10)
    }

    /// Run operation `op` once and return what the loop consumes: a translation's
    /// absolute address (`black_box` of the whole `Result` would time a
    /// store-forwarding stall of the harness, not the translation; an exception
    /// returns [`FAILED`]), a memop's return value, 0 for the others.
    #[inline(always)]
    fn call(&mut self, op: usize) -> u64 {
        let f = self;
        match op {
            0 => {
                let r = translate_fragment(
                    &f.vm_rf,
                    &f.cpu_rf,
                    f.asce_rf,
                    black_box(VA_RF + 0x9AC),
                    AccessMode::Fetch,
                );
                r.map_or(FAILED, |t| t.address.0)
            }
            1 => {
                let r = translate_fragment(
                    &f.vm_seg,
                    &f.cpu_seg,
                    f.asce_seg,
                    black_box(VA_SEG + 0x9AC),
                    AccessMode::Fetch,
                );
                r.map_or(FAILED, |t| t.address.0)
            }
            2 => {
                let r = walk_referencing(f.vm_rf.storage(), black_box(VA_RF + 0x9AC), &f.ctx_rf);
                r.map_or(FAILED, |t| t.address.0)
            }
            3 => {
                let r = walk_referencing(f.vm_seg.storage(), black_box(VA_SEG + 0x9AC), &f.ctx_seg);
                r.map_or(FAILED, |t| t.address.0)
            }
            4 => {
                let r = translate_fragment(
                    &f.vm_rf,
                    &f.cpu_rf,
                    f.asce_rf,
                    black_box(VA_RF + 0x9AC),
                    AccessMode::Fetch,
                );
                r.map_or(FAILED, |t| t.address.0)
            }
            5 => {
                let r =
                    f.cpu_rf
                        .tlb
                        .translate(f.vm_rf.storage(), black_box(VA_RF + 0x9AC), &f.ctx_rf);
                r.map_or(FAILED, |t| t.address.0)
            }
            6 => {
                let r = f.cpu_rf.tlb.translate_address(
                    f.vm_rf.storage(),
                    black_box(VA_RF + 0x9AC),
                    &f.ctx_rf,
                );
                r.map_or(FAILED, |a| a.0)
            }
            7 => {
                let mut user = UserMemory::new(&mut f.buf8);
                vcpu_mem_op(
                    &f.vm_rf,
                    &mut f.cpu_rf,
                    Profile::Linux70,
                    black_box(&f.read8),
                    &mut user,
                ) as u64
            }
            8 | 9 => {
                let mop = if op == 8 { &f.read64 } else { &f.write64 };
                let mut user = UserMemory::new(&mut f.buf);
                vcpu_mem_op(
                    &f.vm_rf,
                    &mut f.cpu_rf,
                    Profile::Linux70,
                    black_box(mop),
                    &mut user,
                ) as u64
            }
            10 => {
                f.dst.copy_from_slice(black_box(&f.src));
                black_box(&mut f.dst);
                0
            }
            _ => 0,
        }
    }
}

/// Run one operation of the `bench` set `iterations` times (for profiling it, e.g.
/// under `valgrind --tool=callgrind`). Returns false for an unknown name.
pub fn run_op(name: &str, iterations: u64) -> bool {
    let Some(i) = OPS.iter().position(|o| o.0 == name) else {
        return false;
    };
    let mut f = Fixture::new();
    f.prepare(name);
    f.repeat_op(i, iterations);
    true
}

/// The names of the operations [`run_op`] knows.
pub fn op_names() -> impl Iterator<Item = &'static str> {
    OPS.iter().map(|o| o.0)
}

/// Run the headline measurements (about 10 s; `budget` per timed item).
pub fn run(budget: Duration) -> Report {
    let start = Instant::now();
    let mut f = Fixture::new();
    let mut m = Vec::new();
    for (i, &(name, what, target)) in OPS.iter().enumerate() {
        f.prepare(name);
        let (median_ns, min_ns) = f.time_op(i, budget);
        m.push(Measurement {
            name,
            what,
            median_ns,
            min_ns,
            target_ns: target,
            met: target.map(|t| min_ns <= t),
        });
    }
    let min = |name: &str| {
        m.iter()
            .find(|x| x.name == name)
            .map_or(f64::NAN, |x| x.min_ns)
    };
    let read_ratio = min("memcpy-64k") / min("memop-read-64k-key");
    let write_ratio = min("memcpy-64k") / min("memop-write-64k-key");
    drop(f);
    Report {
        read_64k_memcpy_ratio: read_ratio,
        write_64k_memcpy_ratio: write_ratio,
        sparse: sparse_guest(),
        measurements: m,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// Create a 1 TiB guest, write 4 KiB at 1000 random page addresses, then enable
/// storage keys (which resets them all).
fn sparse_guest() -> SparseGuest {
    const SIZE: u64 = 1 << 40;
    const ACCESSES: u32 = 1000;
    let before = resident();
    let t = Instant::now();
    let vm = Vm::new(&[(0, SIZE)], Facilities::default_set()).expect("1 TiB of address space");
    let create_ms = t.elapsed().as_secs_f64() * 1e3;
    let page = [0xA5u8; 4096];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..ACCESSES {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let gpa = (x % (SIZE / 4096)) * 4096;
        let _ = access_absolute(&vm, gpa, Buffer::Store(&page), AccessKey::ZERO);
    }
    let t = Instant::now();
    vm.enable_keys();
    let enable_keys_ms = t.elapsed().as_secs_f64() * 1e3;
    let after = resident();
    drop(vm);
    SparseGuest {
        size: SIZE,
        create_ms,
        accesses: ACCESSES,
        enable_keys_ms,
        resident_growth: before.zip(after).map(|(b, a)| a.saturating_sub(b)),
        resident_after: after,
    }
}

fn print_text(r: &Report) {
    println!("s390-gaccess bench: headline measurements (min and median per call over batches)");
    println!();
    println!(
        "{:<22} {:>10} {:>10} {:>10}  what",
        "measurement", "min ns", "median ns", "target ns"
    );
    for x in &r.measurements {
        let target = match (x.target_ns, x.met) {
            (Some(t), Some(true)) => format!("<={t} ok"),
            (Some(t), _) => format!("<={t} MISS"),
            _ => "-".to_string(),
        };
        println!(
            "{:<22} {:>10.2} {:>10.2} {:>10}  {}",
            x.name, x.min_ns, x.median_ns, target, x.what
        );
    }
    println!();
    println!(
        "64 KiB memop / memcpy bandwidth: read {:.2}, write {:.2} (target >= 0.7)",
        r.read_64k_memcpy_ratio, r.write_64k_memcpy_ratio
    );
    let s = &r.sparse;
    let mib = |b: Option<u64>| {
        b.map_or("n/a".to_string(), |b| {
            format!("{:.1} MiB", b as f64 / 1048576.0)
        })
    };
    println!(
        "1 TiB sparse guest: created in {:.3} ms (target < 10); after {} random 4 KiB writes the resident set grew by {} (now {}; target < 64 MiB); storage keys then enabled (all reset) in {:.3} ms",
        s.create_ms,
        s.accesses,
        mib(s.resident_growth),
        mib(s.resident_after),
        s.enable_keys_ms
    );
    println!(
        "translation targets: for a translation with its walk context given (the -engine and cache-hit-lookup/-address rows); the translate_fragment rows also build the context on every call and carry none; the targets' own measure is criterion's median (cargo bench --bench translation)"
    );
    println!("total {:.1} s", r.seconds);
}

/// The `bench` subcommand: run the headline measurements (about 10 s) and print them,
/// as text or as one JSON object. Returns the process exit code (0; measurements
/// never fail a run).
pub fn bench_command(json: bool) -> i32 {
    let r = run(Duration::from_millis(900));
    if json {
        match serde_json::to_string(&r) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("bench: {e}");
                return 1;
            }
        }
    } else {
        print_text(&r);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every timed operation does what its line says, so that no row times an
    /// exception path or a cache in the wrong state.
    #[test]
    fn every_timed_operation_does_what_it_says() {
        let mut f = Fixture::new();
        let page: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
        for vm in [&f.vm_rf, &f.vm_seg] {
            access_absolute(vm, DATA, Buffer::Store(&page), AccessKey::ZERO).expect("data");
        }
        for (i, (name, _, _)) in OPS.iter().enumerate() {
            f.prepare(name);
            // Cache off only for the two cache-off rows.
            let off = i <= 1;
            assert_eq!(f.cpu_rf.tlb.enabled(), !off, "{name}");
            assert_eq!(f.cpu_seg.tlb.enabled(), !off, "{name}");
            for _ in 0..2 {
                let got = f.call(i);
                let want = match i {
                    0..=6 => DATA + 0x9AC,
                    _ => 0,
                };
                assert_eq!(got, want, "{name}");
            }
        }
        // The keyed reads returned the guest's bytes (key 5 matches the frames' ACC).
        assert_eq!(f.buf8, page[0x9AC..0x9B4]);
        assert_eq!(f.dst, f.src);
    }

    /// A run reports every operation with its target, once, in order, and the JSON
    /// is one object.
    #[test]
    fn a_run_reports_every_operation() {
        let r = run(Duration::ZERO);
        let names: Vec<_> = r.measurements.iter().map(|m| m.name).collect();
        assert_eq!(names, op_names().collect::<Vec<_>>());
        for (m, &(_, what, target)) in r.measurements.iter().zip(OPS.iter()) {
            assert_eq!(m.what, what);
            assert_eq!(m.target_ns, target);
            assert_eq!(m.met, target.map(|t| m.min_ns <= t), "{}", m.name);
            assert!(m.min_ns > 0.0 && m.min_ns <= m.median_ns, "{}", m.name);
        }
        assert!(r.read_64k_memcpy_ratio.is_finite() && r.read_64k_memcpy_ratio > 0.0);
        assert!(r.write_64k_memcpy_ratio.is_finite() && r.write_64k_memcpy_ratio > 0.0);
        assert_eq!((r.sparse.size, r.sparse.accesses), (1 << 40, 1000));
        let json: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&r).expect("json")).expect("parse");
        assert!(json.is_object());
        assert_eq!(
            json["measurements"].as_array().map(Vec::len),
            Some(OPS.len())
        );
    }

    #[test]
    fn an_unknown_operation_is_refused() {
        assert!(!run_op("no-such-op", 1));
        assert!(run_op("empty", 1));
    }
}
