//! One `Vm` shared by several threads with several `Vcpu`s (kernel-semantics.md §13.1
//! Q6: the model is usable from several threads at once; a cmpxchg is atomic with
//! respect to every other access of the model; a 1- or 2-byte cmpxchg never returns
//! -EAGAIN).
//!
//! Invariants checked (each is one the model guarantees; see docs/robustness.md):
//! * **bit count** (memop.c `test_cmpxchg_key_concurrent`, selftest-cases.md
//!   MEMOP-017, here with more parties): host threads (vm ABSOLUTE_CMPXCHG with key 1,
//!   sizes 1-16) and a guest thread (CS on storage, key 0) permute the bits of 16-byte
//!   blocks; the number of set bits of every block is kept;
//! * **counters**: 8-, 2- and 1-byte counters incremented with cmpxchg loops by several
//!   threads end at exactly the number of increments (no lost update, never -EAGAIN);
//! * **no torn doublewords**: 8-byte-aligned doublewords only ever changed by 8-byte
//!   cmpxchg hold self-checking values; 8-byte logical reads through DAT (by vCPUs with
//!   their translation cache on) and 8-byte absolute reads never see a mix of two;
//! * **private regions**: each vCPU's logical writes (crossing a page boundary) to its
//!   own region are not disturbed by the others; the last value written is there;
//! * **key changes under access**: keyed logical reads and writes of frames whose ACC is
//!   flipped concurrently by SSKE / SET_SKEYS return 0 or 4 only, and a 4 carries a
//!   key-controlled TEID (§9.3, §9.4);
//! * **R and C are monotonic**: on frames whose key no one sets, R and C are never seen
//!   to go from 1 to 0 by a concurrent GET_SKEYS observer, and at the end every frame
//!   stored to has R and C (§10.3);
//! * **no stale translations across threads**: a thread remaps a page (PTE rewritten)
//!   between barrier rounds; every vCPU thread, translation cache on, reads the new
//!   frame's contents in the round after the remap (§5.6 last note, §11 item 2).
//!
//! `ROBUST_CONCURRENCY_SCALE` (default 1) multiplies the iteration counts.

use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::dat::builder::{LeafFlags, SpaceBuilder};
use s390_gaccess::dat::{DesignationType, FrameSize, TableLevel};
use s390_gaccess::memop::abi::{KVM_S390_KEYOP_SSKE, KvmS390Keyop, KvmS390Skeys};
use s390_gaccess::memop::{MemOp, UserBuffer, get_skeys, keyop, set_skeys};
use s390_gaccess::storage::{CompareExchange, GuestStorage};
use s390_gaccess::vcpu::{Psw, Vcpu};
use s390_gaccess::vm::Vm;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};

// Static assertions: a VM is shared between threads, a vCPU moves to its thread.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Vm>();
    send_sync::<GuestStorage>();
    send::<Vcpu>();
};

const PAGE: u64 = 4096;
const TABLES: u64 = 0x10_0000;
/// Virtual base of the data region, mapped 1:1 onto absolute `DATA` (64 pages).
const VDATA: u64 = 0x40_0000;
const DATA: u64 = 0x20_0000;
/// 16 blocks of 16 bytes whose bits are permuted (frame ACC 1).
const BLOCKS: u64 = DATA;
const NBLOCKS: u64 = 16;
/// Counters (frame ACC 1): u64 at +0, u16 at +8, u8 at +11.
const COUNTERS: u64 = DATA + 0x1000;
/// Self-checking doublewords (frame ACC 0).
const DWORDS: u64 = DATA + 0x2000;
const NDWORDS: u64 = 32;
/// Private regions: 2 pages per vCPU from here, starting mid-page.
const PRIVATE: u64 = DATA + 0x4000;
/// Frames whose keys are flipped (4 frames).
const KEYFRAMES: u64 = DATA + 0x1_0000;
/// The remapped virtual page and its two frames.
const VREMAP: u64 = 0x50_0000;
const FRAME_A: u64 = 0x30_0000;
const FRAME_B: u64 = 0x30_1000;

fn scale() -> u32 {
    std::env::var("ROBUST_CONCURRENCY_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// A 64-bit self-checking value: the high word is the complement of the low word.
fn dword(x: u32) -> u64 {
    ((!x as u64) << 32) | x as u64
}

fn is_dword(v: u64) -> bool {
    (v >> 32) as u32 == !(v as u32)
}

/// Xorshift for the threads' choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The guest: 8 MiB, a region-third space mapping the data region and the remapped
/// page, keys in use, and the vCPU template (DAT on, 64-bit, cache on).
fn guest() -> (Vm, Vcpu) {
    let vm = Vm::with_memory(8 << 20).expect("memory");
    let mut b = SpaceBuilder::new(vm.storage(), DesignationType::RegionThird, TABLES, 3, 0)
        .expect("tables");
    b.map(
        VDATA,
        DATA,
        64 * PAGE,
        FrameSize::Size4K,
        LeafFlags::default(),
    )
    .expect("data");
    b.map(
        VREMAP,
        FRAME_A,
        PAGE,
        FrameSize::Size4K,
        LeafFlags::default(),
    )
    .expect("remap");
    let mut vcpu = Vcpu::new();
    vcpu.psw = Psw {
        mask: Psw::DAT | Psw::EA | Psw::BA,
        addr: 0,
    };
    vcpu.cr[1] = b.asce().0;
    vcpu.tlb.set_enabled(true);
    // Keys in use: ACC 1 on blocks and counters, the rest 0.
    let mut keys = [0x10u8, 0x10];
    assert_eq!(
        set_skeys(
            &vm,
            &KvmS390Skeys::new(DATA / PAGE, 2),
            &UserBuffer::valid(&mut keys)
        ),
        0
    );
    // Initial contents: blocks with a pattern, self-checking doublewords.
    for i in 0..NBLOCKS {
        let v = (0x0123_4567_89AB_CDEF_u128 << 64 | 0xF0E1_D2C3_B4A5_9687) ^ (i as u128 * 0x1111);
        vm.storage()
            .write(AbsoluteAddress(BLOCKS + i * 16), &v.to_be_bytes())
            .expect("blocks");
    }
    for i in 0..NDWORDS {
        vm.storage()
            .write_u64(AbsoluteAddress(DWORDS + i * 8), dword(i as u32))
            .expect("dwords");
    }
    vm.storage()
        .write(AbsoluteAddress(FRAME_A), &[0xAA; PAGE as usize])
        .expect("A");
    vm.storage()
        .write(AbsoluteAddress(FRAME_B), &[0xBB; PAGE as usize])
        .expect("B");
    (vm, vcpu)
}

fn ones(b: &[u8]) -> u32 {
    b.iter().map(|x| x.count_ones()).sum()
}

/// A bit permutation of `b` (keeps the number of set bits): rotate or swap two bytes.
fn permute(b: &[u8], r: u64) -> Vec<u8> {
    let mut v = b.to_vec();
    let n = v.len();
    if r & 1 == 0 && n > 1 {
        v.swap((r >> 8) as usize % n, (r >> 16) as usize % n);
    } else {
        let bits = n * 8;
        let k = (r >> 8) as usize % bits;
        let mut x = 0u128;
        for &c in &v {
            x = x << 8 | c as u128;
        }
        let mask = if bits == 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        x = ((x >> k) | (x << ((bits - k) % bits))) & mask;
        for i in (0..n).rev() {
            v[i] = x as u8;
            x >>= 8;
        }
    }
    v
}

/// vm ABSOLUTE_CMPXCHG key 1 (or 0) until it exchanges `f(current)`; returns the
/// number of attempts.
fn host_update(vm: &Vm, addr: u64, size: usize, key: u8, f: impl Fn(&[u8]) -> Vec<u8>) -> u32 {
    let mut cur = vec![0u8; size];
    vm.storage()
        .read(AbsoluteAddress(addr), &mut cur)
        .expect("in memory");
    let mut tries = 0;
    loop {
        tries += 1;
        let new = f(&cur);
        let r = MemOp::absolute_cmpxchg(addr, new, cur.clone())
            .key(key)
            .run_vm(vm);
        assert_eq!(
            r.ret, 0,
            "cmpxchg {size} bytes at {addr:#x} (never -EAGAIN, §13.1)"
        );
        if r.exchanged == Some(true) {
            return tries;
        }
        cur = r.old;
    }
}

/// The guest's CS / CSG / CDSG (key 0) until it exchanges `f(current)`.
fn guest_update(vm: &Vm, addr: u64, size: usize, f: impl Fn(&[u8]) -> Vec<u8>) {
    let mut cur = vec![0u8; size];
    vm.storage()
        .read(AbsoluteAddress(addr), &mut cur)
        .expect("in memory");
    loop {
        let new = f(&cur);
        match vm
            .storage()
            .compare_exchange(AbsoluteAddress(addr), &cur, &new)
            .expect("in memory")
            .expect("valid size")
        {
            CompareExchange::Exchanged => return,
            CompareExchange::Unequal(v) => cur = v[..size].to_vec(),
        }
    }
}

fn add_be(b: &[u8], n: u64) -> Vec<u8> {
    let mut x = 0u64;
    for &c in b {
        x = x << 8 | c as u64;
    }
    let x = x.wrapping_add(n);
    x.to_be_bytes()[8 - b.len()..].to_vec()
}

/// Sets the flag if its thread panics, so that the others stop.
struct StopOnPanic<'a>(&'a AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// The main stress: cmpxchg parties, vCPU readers and writers, a key flipper and an
/// R/C observer on one VM at once.
#[test]
fn concurrent_memops_keep_invariants() {
    let (vm, template) = guest();
    let iters = 20000 * scale();
    let hosts = 2u64;
    let increments = 2000 * scale() as u64;
    let stop = AtomicBool::new(false);
    let ones_before: Vec<u32> = (0..NBLOCKS)
        .map(|i| {
            let mut b = [0u8; 16];
            vm.storage()
                .read(AbsoluteAddress(BLOCKS + i * 16), &mut b)
                .expect("block");
            ones(&b)
        })
        .collect();
    let last_written = Mutex::new(vec![Vec::<u8>::new(); 2]);
    let workers_done = AtomicBool::new(false);
    let mut failed = false;
    std::thread::scope(|s| {
        let mut workers = Vec::new();
        // Host cmpxchg parties (vm fd, key 1 on ACC-1 frames, key 0 on the dwords).
        for h in 0..hosts {
            let (vm, stop) = (&vm, &stop);
            workers.push(s.spawn(move || {
                let _g = StopOnPanic(stop);
                let mut rng = Rng(0x9E37_79B9 + h);
                for i in 0..iters {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let size = 1usize << rng.below(5);
                    let block = BLOCKS + rng.below(NBLOCKS) * 16;
                    let off = (rng.below(16) as usize) & !(size - 1);
                    let r = rng.next();
                    host_update(vm, block + off as u64, size, 1, |b| permute(b, r));
                    let d = DWORDS + rng.below(NDWORDS) * 8;
                    let x = rng.next() as u32;
                    host_update(vm, d, 8, 0, |_| dword(x).to_be_bytes().to_vec());
                    if (i as u64) < increments {
                        host_update(vm, COUNTERS, 8, 1, |b| add_be(b, 1));
                        host_update(vm, COUNTERS + 8, 2, 1, |b| add_be(b, 1));
                        host_update(vm, COUNTERS + 11, 1, 1, |b| add_be(b, 1));
                    }
                }
            }));
        }
        // The guest's CS on the same blocks and counters.
        {
            let (vm, stop) = (&vm, &stop);
            workers.push(s.spawn(move || {
                let _g = StopOnPanic(stop);
                let mut rng = Rng(0xC0FFEE);
                for i in 0..iters {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let size = 4usize << rng.below(3);
                    let block = BLOCKS + rng.below(NBLOCKS) * 16;
                    let off = (rng.below(16) as usize) & !(size - 1);
                    let r = rng.next();
                    guest_update(vm, block + off as u64, size, |b| permute(b, r));
                    if (i as u64) < increments {
                        guest_update(vm, COUNTERS, 8, |b| add_be(b, 1));
                    }
                }
            }));
        }
        // vCPUs: torn-free reads through DAT, private writes, keyed accesses to
        // frames whose keys are being flipped.
        for c in 0..2u64 {
            let (vm, stop, last_written) = (&vm, &stop, &last_written);
            let mut vcpu = template.clone();
            workers.push(s.spawn(move || {
                let _g = StopOnPanic(stop);
                let mut rng = Rng(0xABCD + c);
                let region = VDATA + (PRIVATE - DATA) + c * 2 * PAGE + 0x800;
                for i in 0..iters {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let d = VDATA + (DWORDS - DATA) + rng.below(NDWORDS) * 8;
                    let r = MemOp::logical_read(d, 8).run_vcpu(vm, &mut vcpu);
                    assert_eq!(r.ret, 0);
                    let v = u64::from_be_bytes(r.data[..8].try_into().expect("8 bytes"));
                    assert!(is_dword(v), "torn doubleword {v:#018x} at {d:#x}");
                    let a = MemOp::absolute_read(DWORDS + rng.below(NDWORDS) * 8, 8).run_vm(vm);
                    let v = u64::from_be_bytes(a.data[..8].try_into().expect("8 bytes"));
                    assert!(a.ret == 0 && is_dword(v), "torn doubleword {v:#018x}");
                    // Private region: 0x1000 bytes across a page boundary.
                    let data: Vec<u8> = (0..0x1000u32).map(|j| (i ^ j ^ c as u32) as u8).collect();
                    let w = MemOp::logical_write(region, data.clone()).run_vcpu(vm, &mut vcpu);
                    assert_eq!(w.ret, 0);
                    last_written.lock().expect("lock")[c as usize] = data;
                    // Keyed accesses to flipping frames: 0 or 4 with a key TEID.
                    let kf = VDATA + (KEYFRAMES - DATA) + rng.below(4 * PAGE - 16);
                    let op = if rng.below(2) == 0 {
                        MemOp::logical_read(kf, 16)
                    } else {
                        MemOp::logical_write(kf, vec![c as u8; 16])
                    };
                    let r = op.key(1).run_vcpu(vm, &mut vcpu);
                    assert!(r.ret == 0 || r.ret == 4, "keyed access gave {}", r.ret);
                    if r.ret == 4 {
                        let bits = r.pgm.expect("record").teid.0 & 0x8C;
                        assert!(bits == 0x08 || bits == 0, "not a key TEID: {bits:#x}");
                    }
                }
            }));
        }
        // The key flipper: SSKE and SET_SKEYS on the key frames only.
        {
            let (vm, stop) = (&vm, &stop);
            workers.push(s.spawn(move || {
                let _g = StopOnPanic(stop);
                let mut rng = Rng(0x5EED);
                for _ in 0..iters {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let f = KEYFRAMES + rng.below(4) * PAGE;
                    let k = [0x10u8, 0x18, 0x20, 0x28][rng.below(4) as usize];
                    if rng.below(2) == 0 {
                        let mut kop = KvmS390Keyop::new(KVM_S390_KEYOP_SSKE, f, k);
                        assert_eq!(keyop(vm, &mut kop), 0);
                    } else {
                        let mut b = [k];
                        let args = KvmS390Skeys::new(f / PAGE, 1);
                        assert_eq!(set_skeys(vm, &args, &UserBuffer::valid(&mut b)), 0);
                    }
                }
            }));
        }
        // The R/C observer: keys of the data frames (minus the key frames) never lose
        // R or C while the others run.
        {
            let (vm, stop, workers_done) = (&vm, &stop, &workers_done);
            workers.push(s.spawn(move || {
                let _g = StopOnPanic(stop);
                let n = 64usize;
                let mut seen = vec![0u8; n];
                while !workers_done.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                    let mut keys = vec![0u8; n];
                    let args = KvmS390Skeys::new(DATA / PAGE, n as u64);
                    assert_eq!(get_skeys(vm, &args, &mut UserBuffer::valid(&mut keys)), 0);
                    for (i, (&k, s)) in keys.iter().zip(seen.iter_mut()).enumerate() {
                        let frame = DATA + i as u64 * PAGE;
                        if (KEYFRAMES..KEYFRAMES + 4 * PAGE).contains(&frame) {
                            continue;
                        }
                        assert_eq!(*s & 0x06 & !k, 0, "R/C cleared on frame {frame:#x}");
                        *s = k;
                    }
                    std::thread::yield_now();
                }
            }));
        }
        // The observer is the last handle: join the others, then stop it.
        let observer = workers.pop().expect("observer");
        for w in workers {
            failed |= w.join().is_err();
        }
        workers_done.store(true, Ordering::Relaxed);
        failed |= observer.join().is_err();
    });
    assert!(
        !failed && !stop.load(Ordering::Relaxed),
        "a thread failed (see its panic above)"
    );
    // Bit counts kept (MEMOP-017).
    for i in 0..NBLOCKS {
        let mut b = [0u8; 16];
        vm.storage()
            .read(AbsoluteAddress(BLOCKS + i * 16), &mut b)
            .expect("block");
        assert_eq!(
            ones(&b),
            ones_before[i as usize],
            "block {i}: set bits not kept"
        );
    }
    // Counters: every increment counted.
    let mut c = [0u8; 12];
    vm.storage()
        .read(AbsoluteAddress(COUNTERS), &mut c)
        .expect("counters");
    let n = increments * hosts;
    assert_eq!(
        u64::from_be_bytes(c[..8].try_into().expect("u64")),
        n + increments
    );
    assert_eq!(u16::from_be_bytes([c[8], c[9]]) as u64, n & 0xFFFF);
    assert_eq!(c[11] as u64, n & 0xFF);
    // Private regions hold their last write; stored frames have R and C.
    let last = last_written.lock().expect("lock");
    for cpu in 0..2u64 {
        let at = PRIVATE + cpu * 2 * PAGE + 0x800;
        let mut got = vec![0u8; 0x1000];
        vm.storage()
            .read(AbsoluteAddress(at), &mut got)
            .expect("region");
        assert!(
            got == last[cpu as usize],
            "vCPU {cpu}'s region was disturbed"
        );
        for f in [at & !0xFFF, (at & !0xFFF) + PAGE] {
            let k = vm.storage_key(AbsoluteAddress(f)).expect("frame");
            assert!(k.referenced() && k.changed(), "frame {f:#x}: {k:?}");
        }
    }
    for f in [BLOCKS, COUNTERS, DWORDS] {
        let k = vm.storage_key(AbsoluteAddress(f)).expect("frame");
        assert!(k.referenced() && k.changed(), "frame {f:#x}: {k:?}");
    }
}

/// A page is remapped between barrier rounds; every vCPU thread (translation cache on)
/// must read the new frame in the next round.
#[test]
fn remaps_are_seen_by_every_vcpu_thread() {
    let (vm, template) = guest();
    let rounds = 2000 * scale();
    let readers = 3;
    let barrier = Barrier::new(readers + 1);
    // Failures are collected, not panicked, so that no thread leaves the barriers.
    let errors = Mutex::new(Vec::<String>::new());
    let asce = s390_gaccess::dat::Asce(template.cr[1]);
    let pte =
        s390_gaccess::dat::builder::entry_address(vm.storage(), asce, VREMAP, TableLevel::Page)
            .expect("pte");
    std::thread::scope(|s| {
        for t in 0..readers {
            let (vm, barrier, errors) = (&vm, &barrier, &errors);
            let mut vcpu = template.clone();
            s.spawn(move || {
                for r in 0..rounds {
                    barrier.wait(); // the writer has remapped for round r
                    let want = if r % 2 == 0 { 0xBB } else { 0xAA };
                    for k in 0..4u64 {
                        let ga = VREMAP + ((t as u64 * 1000 + k * 997) % (PAGE - 8));
                        let got = MemOp::logical_read(ga, 8).run_vcpu(vm, &mut vcpu);
                        if got.ret != 0 || got.data != [want; 8] {
                            errors.lock().expect("lock").push(format!(
                                "round {r}, reader {t}: ret {} data {:02x?}, want {want:#x}",
                                got.ret, got.data
                            ));
                        }
                    }
                    barrier.wait(); // done reading
                }
            });
        }
        for r in 0..rounds {
            let frame = if r % 2 == 0 { FRAME_B } else { FRAME_A };
            vm.storage().write_u64(pte, frame).expect("pte");
            barrier.wait();
            barrier.wait();
        }
    });
    let errors = errors.into_inner().expect("lock");
    assert!(
        errors.is_empty(),
        "stale translations: {:?}",
        &errors[..errors.len().min(5)]
    );
    // The PTE frame was read by the walks: R set (§10.3).
    assert!(vm.storage_key(pte).expect("pte frame").referenced());
}
