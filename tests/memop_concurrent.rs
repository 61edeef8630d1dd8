//! MEMOP-017 `test_cmpxchg_key_concurrent` (selftest-cases.md §2.5): the host's vm
//! ABSOLUTE_CMPXCHG with key 1 and a guest thread's CS/CSG/CDSG permute the bits of
//! one 16-byte block at the same time; every exchange is atomic, so the number of set
//! bits is kept (§7, §13.1 Q6). A 16-byte lock in mem1 hands the turns over as in the
//! selftest.

#[path = "memop_support.rs"]
mod support;

use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::memop::{MemOp, Profile};
use s390_gaccess::storage::CompareExchange;
use s390_gaccess::vm::Vm;
use std::sync::atomic::{AtomicBool, Ordering};
use support::*;

/// The selftest's 100 × 10000 iterations; fewer in unoptimised builds.
const OUTER: u32 = if cfg!(debug_assertions) { 20 } else { 100 };
const INNER: u32 = if cfg!(debug_assertions) { 1000 } else { 10000 };
const MAX_BLOCK: u32 = 16;

/// `choose_block`: the (size, offset) of iteration `i` for the guest or the host.
fn choose_block(guest: bool, i: u32) -> (usize, usize) {
    let (mul, add) = if guest { (19u32, 11u32) } else { (17, 5) };
    let mut rand = i.wrapping_mul(mul).wrapping_add(add);
    let size = if guest {
        1usize << ((rand % 3) + 2)
    } else {
        1usize << (rand % 5)
    };
    rand = rand.wrapping_mul(mul).wrapping_add(add);
    let offset = (rand % MAX_BLOCK) as usize & !(size - 1);
    (size, offset)
}

/// The low `size` bytes of `v` as a mask.
fn size_mask(size: usize) -> u128 {
    if size == 16 {
        u128::MAX
    } else {
        (1u128 << (size * 8)) - 1
    }
}

/// `rotate(size, val, amount)`: rotate the low `size` bytes right by `amount` bits.
fn rotate(size: usize, val: u128, amount: u32) -> u128 {
    let bits = size as u32 * 8;
    let amount = amount % bits;
    let v = val & size_mask(size);
    if amount == 0 {
        return v;
    }
    ((v << (bits - amount)) | (v >> amount)) & size_mask(size)
}

/// `permutate_bits`: a rotation of the low `size` bytes or a swap of two of them
/// (bytes counted from the least significant); both keep the number of set bits.
fn permutate_bits(guest: bool, i: u32, size: usize, old: u128) -> u128 {
    let step = |r: u32| r.wrapping_mul(3).wrapping_add(1);
    let mut rand = step(i);
    if guest {
        rand = step(rand);
    }
    if rand % 2 == 0 {
        rand = step(rand);
        let a = rand as usize % size;
        rand = step(rand);
        let b = rand as usize % size;
        let mut bytes = old.to_le_bytes();
        bytes.swap(a, b);
        return u128::from_le_bytes(bytes);
    }
    rand = step(rand);
    rotate(size, old, rand % (size as u32 * 8))
}

/// The big-endian bytes of the low `size` bytes of `v` (the selftest's
/// `quad_to_char`).
fn low_bytes(v: u128, size: usize) -> Vec<u8> {
    v.to_be_bytes()[16 - size..].to_vec()
}

fn from_low_bytes(b: &[u8]) -> u128 {
    let mut q = [0u8; 16];
    q[16 - b.len()..].copy_from_slice(b);
    u128::from_be_bytes(q)
}

/// The guest's CS / CSG / CDSG on absolute `addr` (PSW key 0): returns whether it
/// swapped, and sets `old` to the value found.
fn guest_cs(vm: &Vm, addr: u64, size: usize, old: &mut u128, new: u128) -> bool {
    let r = vm
        .storage()
        .compare_exchange(
            AbsoluteAddress(addr),
            &low_bytes(*old, size),
            &low_bytes(new, size),
        )
        .expect("in memory")
        .expect("valid size");
    match r {
        CompareExchange::Exchanged => true,
        CompareExchange::Unequal(cur) => {
            *old = from_low_bytes(&cur[..size]);
            false
        }
    }
}

/// The host's vm ABSOLUTE_CMPXCHG with KEY(1); returns `succ` and updates `old`.
fn host_cmpxchg(vm: &Vm, p: Profile, addr: u64, size: usize, old: &mut u128, new: u128) -> bool {
    let m = MemOp::absolute_cmpxchg(addr, low_bytes(new, size), low_bytes(*old, size)).key(1);
    let r = m.profile(p).run_vm(vm);
    assert_eq!(r.ret, 0, "every host CMPXCHG returns 0");
    *old = (*old & !size_mask(size)) | from_low_bytes(&r.old);
    r.exchanged == Some(true)
}

/// Sets the flag when its side panics, so the other side stops waiting for the lock.
struct AbortOnPanic<'a>(&'a AtomicBool);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

fn guest(vm: &Vm, abort: &AtomicBool) {
    let _guard = AbortOnPanic(abort);
    let mut old: u128;
    for i in 0..OUTER {
        loop {
            old = 1;
            if guest_cs(vm, MEM1_GPA, 16, &mut old, 0) {
                break;
            }
            if abort.load(Ordering::Relaxed) {
                return;
            }
            std::hint::spin_loop();
        }
        for j in 0..INNER {
            let (size, offset) = choose_block(true, i + j);
            loop {
                let new = permutate_bits(true, i + j, size, old);
                if guest_cs(vm, MEM2_GPA + offset as u64, size, &mut old, new) {
                    break;
                }
            }
        }
    }
}

fn host(vm: &Vm, p: Profile, abort: &AtomicBool) {
    let _guard = AbortOnPanic(abort);
    let mut old: u128;
    for i in 0..OUTER {
        loop {
            old = 0;
            if host_cmpxchg(vm, p, MEM1_GPA, 16, &mut old, 1) {
                break;
            }
            assert!(!abort.load(Ordering::Relaxed), "guest thread stopped");
            std::hint::spin_loop();
        }
        for j in 0..INNER {
            let (size, offset) = choose_block(false, i + j);
            loop {
                let new = permutate_bits(false, i + j, size, old);
                if host_cmpxchg(vm, p, MEM2_GPA + offset as u64, size, &mut old, new) {
                    break;
                }
            }
        }
    }
}

/// MEMOP-017: concurrent cmpxchg keeps the number of set bits.
#[test]
fn memop_017_concurrent_cmpxchg_keeps_set_bits() {
    for p in profiles() {
        let mut env = Env::new(p);
        env.guest_set_keys(MEM1_GVA, MAX_BLOCK as u64, 0x10);
        env.guest_set_keys(MEM2_GVA, MAX_BLOCK as u64, 0x10);
        let (mem1, _) = prepare_mem12(17);
        let w = env.vcpu_op(MemOp::logical_write(MEM2_GVA, mem1[..16].to_vec()));
        assert_eq!(w.ret, 0);
        let abort = AtomicBool::new(false);
        std::thread::scope(|s| {
            // The threads share the VM; the vCPU stays with this one (`Vcpu` is not
            // `Sync`: one thread at a time, as the kernel's vcpu mutex allows).
            let g = s.spawn(|| guest(&env.vm, &abort));
            host(&env.vm, env.profile, &abort);
            g.join().expect("guest thread");
        });
        let r = env.vcpu_op(MemOp::logical_read(MEM2_GVA, 16));
        assert_eq!(r.ret, 0);
        let ones = |b: &[u8]| b.iter().map(|x| x.count_ones()).sum::<u32>();
        assert_eq!(
            ones(&mem1[..16]),
            ones(&r.data),
            "must retain number of set bits"
        );
        assert_ne!(mem1[..16], r.data[..], "the block was permuted");
    }
}

/// The helpers keep the number of set bits for every size and both sides.
#[test]
fn permutations_keep_set_bits() {
    let v: u128 = 0x0123_4567_89AB_CDEF_FEDC_BA98_7654_3210;
    for i in 0..2000 {
        for guest in [false, true] {
            let (size, offset) = choose_block(guest, i);
            assert!(offset + size <= 16 && offset % size == 0);
            let old = v & size_mask(size);
            let new = permutate_bits(guest, i, size, old) & size_mask(size);
            assert_eq!(old.count_ones(), new.count_ones());
        }
    }
}
