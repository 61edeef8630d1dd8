//! The cases of the Linux selftest `s390/memop.c` (selftest-cases.md §2, MEMOP-001 to
//! MEMOP-063; MEMOP-017 is in `memop_concurrent.rs`), run against the model for both
//! profiles. Kernel-derived values (`[kernel-derived]` in the case file) are asserted
//! too. § numbers without a file name cite kernel-semantics.md.

#[path = "memop_support.rs"]
mod support;

use s390_gaccess::exception::{Errno, Teid};
use s390_gaccess::memop::abi::{
    KVM_CAP_S390_MEM_OP, KVM_CAP_S390_MEM_OP_EXTENSION, KVM_S390_MEMOP_LOGICAL_WRITE,
};
use s390_gaccess::memop::{MemOp, Profile, check_extension, deliver_pending, lowcore};
use support::*;

const EINVAL: i32 = -22;
const E2BIG: i32 = -7;
const EFAULT: i32 = -14;

/// Gating of the selftest: the memop capability answers 65536 (t.size), the extension
/// capability has BASE and CMPXCHG (§2.1, selftest-cases.md §2 "Gating").
#[test]
fn gating_capabilities() {
    assert_eq!(check_extension(KVM_CAP_S390_MEM_OP), 65536);
    assert_eq!(check_extension(KVM_CAP_S390_MEM_OP_EXTENSION) & 0x3, 0x3);
}

/// MEMOP-001 `test_copy`: logical write/read of 64 KiB without keys.
#[test]
fn memop_001_simple_copy() {
    for p in profiles() {
        let mut env = Env::new(p);
        env.default_write_read(Target::Logical, SIZE, None, 1);
    }
}

/// MEMOP-002 `test_copy_access_register`: AR mode with AR1 = 0 goes through CR1 (§5.3
/// step 3).
#[test]
fn memop_002_copy_access_register() {
    for p in profiles() {
        let mut env = Env::new(p);
        env.vcpu.psw.mask = (env.vcpu.psw.mask & !(3 << 46)) | (1 << 46);
        env.vcpu.ar[1] = 0;
        let (mem1, _) = prepare_mem12(2);
        env.vcpu_check_n_do(mop(MemOp::logical_write(MEM1_GVA, mem1.clone())).ar(1), 0);
        env.guest_copy();
        let r = env.vcpu_check_n_do(mop(MemOp::logical_read(MEM2_GVA, SIZE)).ar(1), 0);
        assert_eq!(r.data, mem1);
    }
}

/// MEMOP-003..011 `test_copy_key`: keys 0x90; no key, key 0 and matching key 9, on
/// 64 KiB and 1 byte, logical and absolute.
#[test]
fn memop_003_to_011_copy_key() {
    let cases: [(&str, Target, u32, Option<u8>); 9] = [
        ("MEMOP-003", Target::Absolute, SIZE, None),
        ("MEMOP-004", Target::Logical, SIZE, Some(0)),
        ("MEMOP-005", Target::Logical, SIZE, Some(9)),
        ("MEMOP-006", Target::Absolute, SIZE, Some(0)),
        ("MEMOP-007", Target::Absolute, SIZE, Some(9)),
        ("MEMOP-008", Target::Logical, 1, Some(0)),
        ("MEMOP-009", Target::Logical, 1, Some(9)),
        ("MEMOP-010", Target::Absolute, 1, Some(0)),
        ("MEMOP-011", Target::Absolute, 1, Some(9)),
    ];
    for p in profiles() {
        let mut env = Env::new(p);
        env.guest_copy_key();
        for (i, (id, target, size, key)) in cases.into_iter().enumerate() {
            eprintln!("{id} {p:?}");
            env.default_write_read(target, size, key, 10 + i as u64);
        }
    }
}

/// MEMOP-012/013: a mismatching key reads a page without fetch protection (§8.3).
#[test]
fn memop_012_013_copy_key_read_without_fetch_protection() {
    for p in profiles() {
        let mut env = Env::new(p);
        env.guest_copy_key();
        env.default_read(Target::Logical, SIZE, Some(2), 20);
        env.default_read(Target::Absolute, SIZE, Some(2), 21);
    }
}

/// MEMOP-014..016 `test_cmpxchg_key`: the 186 cmpxchg vectors (31 positions × a
/// succeeding and a failing exchange × keys NO_KEY, 0, 9), §7.
#[test]
fn memop_014_to_016_cmpxchg_key_186_vectors() {
    for p in profiles() {
        let mut env = Env::new(p);
        env.guest_copy_key();
        let mut vectors = 0;
        for key in [None, Some(0), Some(9)] {
            for size in [1usize, 2, 4, 8, 16] {
                for offset in (0..16).step_by(size) {
                    vectors += cmpxchg_position(&mut env, key, size, offset);
                }
            }
        }
        assert_eq!(vectors, 186);
    }
}

/// One position of `default_cmpxchg`; returns the number of cmpxchg vectors run (2).
fn cmpxchg_position(env: &mut Env, key: Option<u8>, size: usize, offset: usize) -> usize {
    let seed = (size * 100 + offset) as u64;
    let (mem1, _) = prepare_mem12(seed);
    let r16 = mem1[..16].to_vec();
    // default_write_read(vcpu, vcpu, LOGICAL, 16, NO_KEY).
    env.vcpu_check_n_do(mop(MemOp::logical_write(MEM1_GVA, r16.clone())), 0);
    env.guest_copy();
    let got = env.vcpu_check_n_do(mop(MemOp::logical_read(MEM2_GVA, 16)), 0);
    assert_eq!(got.data, r16);

    let range = offset..offset + size;
    let gaddr = MEM1_GPA + offset as u64;
    let new = [0u8; 16];
    let mut old = r16.clone();
    // The exchange that must succeed.
    let m = with_key(
        mop(MemOp::absolute_cmpxchg(
            gaddr,
            &new[range.clone()],
            &old[range.clone()],
        )),
        key,
    );
    let r = env.vm_op(m);
    assert_eq!(
        (r.ret, r.exchanged),
        (0, Some(true)),
        "size {size} offset {offset} key {key:?}"
    );
    env.guest_copy();
    let mut expect = r16.clone();
    expect[range.clone()].fill(0);
    assert_eq!(
        env.vm_op(mop(MemOp::absolute_read(MEM2_GPA, 16))).data,
        expect
    );

    // The exchange that must fail: old no longer matches at `offset`.
    old.copy_from_slice(&expect);
    let mut new = new;
    new[offset] += 1;
    old[offset] += 1;
    let m = with_key(
        mop(MemOp::absolute_cmpxchg(
            gaddr,
            &new[range.clone()],
            &old[range.clone()],
        )),
        key,
    );
    let r = env.vm_op(m);
    assert_eq!((r.ret, r.exchanged), (0, Some(false)));
    // KVM wrote the actual memory value back into old (§7).
    old[range.clone()].copy_from_slice(&r.old);
    assert_eq!(old, expect);
    env.guest_copy();
    assert_eq!(
        env.vm_op(mop(MemOp::absolute_read(MEM2_GPA, 16))).data,
        expect
    );
    2
}

/// MEMOP-018 `test_copy_key_storage_prot_override`: SPO lets key 2 read and write
/// ACC-9/F=1 memory through the vCPU (§8.3).
#[test]
fn memop_018_copy_key_storage_prot_override() {
    for p in profiles() {
        let mut env = Env::new(p);
        env.vcpu.cr[0] |= CR0_SPO;
        env.guest_copy_key_fetch_prot();
        env.default_write_read(Target::Logical, SIZE, Some(2), 18);
    }
}

/// MEMOP-019/020 `test_copy_key_fetch_prot`: the matching key reads fetch-protected
/// memory, logical and absolute.
#[test]
fn memop_019_020_copy_key_fetch_prot() {
    for p in profiles() {
        let mut env = Env::new(p);
        env.guest_copy_key_fetch_prot();
        env.default_read(Target::Logical, SIZE, Some(9), 19);
        env.default_read(Target::Absolute, SIZE, Some(9), 20);
    }
}

/// The setup of selftest-cases.md §2.8-§2.10: keys 0x18 behind GVA 0 and at
/// absolute 0, 0x00 behind the last page, and FPO as given.
fn fetch_prot_override_env(p: Profile, fpo: bool) -> Env {
    let env = Env::with_low_and_last_page(p);
    let mut env = env;
    if fpo {
        env.vcpu.cr[0] |= CR0_FPO;
    }
    env.guest_set_keys(0, 4096, 0x18);
    env.guest_set_keys(LAST_PAGE_GVA, 4096, 0x00);
    env.guest_sske(0, 0x18);
    env
}

/// MEMOP-021/022 `test_copy_key_fetch_prot_override`: FPO lets key 2 read 0..2047,
/// also as the second fragment of a read that wraps around 2^64 (§8.3, §5.4).
#[test]
fn memop_021_022_copy_key_fetch_prot_override() {
    for p in profiles() {
        let mut env = fetch_prot_override_env(p, true);
        // MEMOP-021.
        let (mem1, _) = prepare_mem12(21);
        assert_eq!(
            env.vcpu_op(mop(MemOp::logical_write(MEM1_GVA, mem1[..4096].to_vec())))
                .ret,
            0
        );
        let page0 = env.read_abs(env.gpa(MEM1_GVA), 4096);
        env.vm
            .storage()
            .write(s390_gaccess::addr::AbsoluteAddress(PAGE0_GPA), &page0)
            .unwrap();
        let r = env.vcpu_check_n_do(mop(MemOp::logical_read(0, 2048)).key(2), 0);
        assert_eq!(r.data, mem1[..2048]);
        // MEMOP-022: 8 KiB written from the last page, wrapping to GVA 0.
        let (r2, _) = prepare_mem12(22);
        let w = env.vcpu_op(mop(MemOp::logical_write(
            LAST_PAGE_GVA,
            r2[..8192].to_vec(),
        )));
        assert_eq!(w.ret, 0);
        assert_eq!(env.read_abs(LAST_PAGE_GPA, 4096), r2[..4096]);
        assert_eq!(env.read_abs(PAGE0_GPA, 4096), r2[4096..8192]);
        // Guest copy of mem1[0..4095] to GVA 0 again.
        env.vm
            .storage()
            .write(s390_gaccess::addr::AbsoluteAddress(PAGE0_GPA), &page0)
            .unwrap();
        let r = env.vcpu_check_n_do(
            mop(MemOp::logical_read(LAST_PAGE_GVA, 4096 + 2048)).key(2),
            0,
        );
        assert_eq!(r.data[..4096], r2[..4096]);
        assert_eq!(r.data[4096..], mem1[..2048]);
    }
}

/// MEMOP-023 `test_errors_key_fetch_prot_override_not_enabled`: without FPO the read
/// is refused (§8.3).
#[test]
fn memop_023_fetch_prot_override_not_enabled() {
    for p in profiles() {
        let mut env = fetch_prot_override_env(p, false);
        env.vcpu_check_n_do(mop(MemOp::logical_read(0, 2048)).key(2), 4);
    }
}

/// MEMOP-024..027 `test_errors_key_fetch_prot_override_enabled`: FPO covers only whole
/// fragments in 0..2047 and never the vm path (§8.3, §11 items 9 and 18).
#[test]
fn memop_024_to_027_fetch_prot_override_limits() {
    for p in profiles() {
        let mut env = fetch_prot_override_env(p, true);
        // MEMOP-024.
        env.vcpu_check_n_do(mop(MemOp::logical_read(0, 2049)).key(2), 4);
        // MEMOP-025.
        env.vcpu_check_n_do(
            mop(MemOp::logical_read(LAST_PAGE_GVA, 4096 + 2048 + 1)).key(2),
            4,
        );
        // MEMOP-026: absolute 0.
        env.vm_check_n_do(mop(MemOp::absolute_read(0, 2048)).key(2), 4);
        // MEMOP-027: the frame behind GVA 0.
        env.vm_check_n_do(mop(MemOp::absolute_read(env.gpa(0), 2048)).key(2), 4);
    }
}

/// MEMOP-028..031 `test_errors_key`: key 2 on page 0 (0x18) fails at once, logical and
/// absolute, read and write; nothing is written (§5.8, §6.1).
#[test]
fn memop_028_to_031_errors_key() {
    for p in profiles() {
        let mut env = Env::new(p);
        env.guest_error_key();
        let before = env.read_abs(MEM1_GPA, SIZE as usize);
        let (mem1, _) = prepare_mem12(28);
        env.vcpu_check_n_do(mop(MemOp::logical_write(MEM1_GVA, mem1.clone())).key(2), 4);
        let r = env.vcpu_check_n_do(mop(MemOp::logical_read(MEM1_GVA, SIZE)).key(2), 4);
        assert!(r.data.iter().all(|&b| b == 0), "user buffer untouched");
        env.vm_check_n_do(mop(MemOp::absolute_write(MEM1_GPA, mem1)).key(2), 4);
        env.vm_check_n_do(mop(MemOp::absolute_read(MEM1_GPA, SIZE)).key(2), 4);
        assert_eq!(env.read_abs(MEM1_GPA, SIZE as usize), before);
    }
}

/// MEMOP-032..036 `test_errors_cmpxchg_key`: key 2 on ACC 9 / F 1 memory gives 4 for
/// every size; `old` comes back as zeros (§7).
#[test]
fn memop_032_to_036_errors_cmpxchg_key() {
    for p in profiles() {
        let env = Env::new(p);
        env.guest_copy_key_fetch_prot();
        let (mem1, _) = prepare_mem12(32);
        env.vm
            .storage()
            .write(s390_gaccess::addr::AbsoluteAddress(MEM2_GPA), &mem1)
            .unwrap();
        for size in [1usize, 2, 4, 8, 16] {
            let m = mop(MemOp::absolute_cmpxchg(
                MEM2_GPA,
                mem1[..size].to_vec(),
                vec![0; size],
            ))
            .key(2);
            let r = env.vm_op(m);
            assert_eq!(r.ret, 4, "size {size}");
            assert_eq!(r.old, vec![0; size]);
        }
        assert_eq!(env.read_abs(MEM2_GPA, 16), mem1[..16]);
    }
}

/// MEMOP-037 `test_termination`: a key-1 write over an ACC-1 page and ACC-9 pages
/// fails on page 1 with a terminating TEID (bits 56/60/61 = 0) after page 0 was written;
/// injected and delivered, the TEID is at prefix+168 (§9.3, §9.4, §9.5).
#[test]
fn memop_037_termination() {
    for p in profiles() {
        let mut env = Env::new(p);
        env.guest_error_key();
        let (mem1, _) = prepare_mem12(37);
        let r = env.vcpu_op(
            mop(MemOp::logical_write(MEM1_GVA, mem1.clone()))
                .key(1)
                .inject(),
        );
        assert_eq!(r.ret, 4);
        // The host installs the current PSW as the program-new PSW.
        let mut psw = env.vcpu.psw.mask.to_be_bytes().to_vec();
        psw.extend_from_slice(&env.vcpu.psw.addr.to_be_bytes());
        assert_eq!(
            env.vm_op(mop(MemOp::absolute_write(lowcore::PGM_NEW_PSW, psw)))
                .ret,
            0
        );
        assert!(deliver_pending(&env.vm, &mut env.vcpu));
        let teid = env.vm_op(mop(MemOp::absolute_read(lowcore::TRANS_EXC_CODE, 8)));
        assert_eq!(teid.ret, 0);
        let teid = u64::from_be_bytes(teid.data.try_into().unwrap());
        assert_eq!(teid & 0x8C, 0, "termination");
        // [kernel-derived] page address, FSI store, AS 0; code 4 at 0x8E; page 0 written.
        assert_eq!(Teid(teid), Teid((MEM1_GVA + 4096) | 0x400));
        assert_eq!(env.read_abs(lowcore::PGM_CODE, 2), [0, 4]);
        assert_eq!(env.read_abs(MEM1_GPA, 4096), mem1[..4096]);
        assert_ne!(env.read_abs(MEM1_GPA + 4096, 4096), mem1[4096..8192]);
    }
}

/// MEMOP-038/039 `test_errors_key_storage_prot_override`: SPO does not apply to the
/// vm ioctl (§8.6).
#[test]
fn memop_038_039_storage_prot_override_not_on_vm() {
    for p in profiles() {
        let mut env = Env::new(p);
        env.vcpu.cr[0] |= CR0_SPO;
        env.guest_copy_key_fetch_prot();
        let (mem1, _) = prepare_mem12(38);
        env.vm_check_n_do(mop(MemOp::absolute_write(MEM1_GPA, mem1)).key(2), 4);
        env.vm_check_n_do(mop(MemOp::absolute_read(MEM2_GPA, SIZE)).key(2), 4);
    }
}

/// One `_test_errors_common` row: runs `m` as the L (vcpu logical) or A (vm absolute)
/// variant and returns the result.
fn run(env: &mut Env, target: Target, m: MemOp) -> i32 {
    match target {
        Target::Logical => env.vcpu_op(m).ret,
        Target::Absolute => env.vm_op(m).ret,
    }
}

fn write_op(target: Target, gaddr_l: u64, gaddr_a: u64, data: Vec<u8>) -> MemOp {
    match target {
        Target::Logical => mop(MemOp::logical_write(gaddr_l, data)),
        Target::Absolute => mop(MemOp::absolute_write(gaddr_a, data)),
    }
}

/// MEMOP-040..053 `_test_errors_common`, L and A (§3.2, §3.3, §3.6).
#[test]
fn memop_040_to_053_errors_common() {
    for p in profiles() {
        let mut env = Env::new(p);
        let (mem1, _) = prepare_mem12(40);
        for target in [Target::Logical, Target::Absolute] {
            let w = |gl, ga| write_op(target, gl, ga, mem1.clone());
            // MEMOP-040/041: size -1 → E2BIG.
            assert_eq!(
                run(&mut env, target, w(MEM1_GVA, MEM1_GPA).size(u32::MAX)),
                E2BIG
            );
            // MEMOP-042/043: size 0 → EINVAL.
            assert_eq!(run(&mut env, target, w(MEM1_GVA, MEM1_GPA).size(0)), EINVAL);
            // MEMOP-044/045: flags -1 → EINVAL.
            assert_eq!(
                run(&mut env, target, w(MEM1_GVA, MEM1_GPA).flags(u64::MAX)),
                EINVAL
            );
            // MEMOP-046..049: bad guest address → > 0; [kernel-derived] L 0x39, A 5.
            let bad = 0xFFFF_FFFF_FFFF_F000;
            let want = if target == Target::Logical { 0x39 } else { 5 };
            assert_eq!(run(&mut env, target, w(bad, bad).check_only()), want);
            assert_eq!(run(&mut env, target, w(bad, bad)), want);
            // MEMOP-050/051: buf NULL → EFAULT.
            assert_eq!(
                run(&mut env, target, w(MEM1_GVA, MEM1_GPA).null_buf()),
                EFAULT
            );
            // MEMOP-052/053: key 17 → EINVAL.
            assert_eq!(run(&mut env, target, w(MEM1_GVA, MEM1_GPA).key(17)), EINVAL);
        }
    }
}

/// MEMOP-054/055: op -1 → EINVAL on both fds (§3.1, §3.5).
#[test]
fn memop_054_055_bad_op() {
    for p in profiles() {
        let mut env = Env::new(p);
        let m = mop(MemOp::raw(u32::MAX, MEM1_GVA, SIZE));
        assert_eq!(env.vcpu_op(m).ret, EINVAL);
        let m = mop(MemOp::raw(u32::MAX, 0, 4096));
        assert_eq!(env.vm_op(m).ret, EINVAL);
    }
}

/// MEMOP-056: ar 17 in AR mode → EINVAL (§3.6 step 2).
#[test]
fn memop_056_bad_access_register() {
    for p in profiles() {
        let mut env = Env::new(p);
        env.vcpu.psw.mask = (env.vcpu.psw.mask & !(3 << 46)) | (1 << 46);
        let (mem1, _) = prepare_mem12(56);
        assert_eq!(
            env.vcpu_op(mop(MemOp::logical_write(MEM1_GVA, mem1)).ar(17))
                .ret,
            EINVAL
        );
        env.vcpu.psw.mask &= !(3 << 46);
    }
}

/// MEMOP-057/058: SIDA ops on a non-protected vCPU → EINVAL (§3.8 step 4).
#[test]
fn memop_057_058_sida_on_non_protected_vcpu() {
    for p in profiles() {
        let mut env = Env::new(p);
        let r = env.vcpu_op(mop(MemOp::sida_read(0, 8)).sida_offset(0x1C0));
        assert_eq!(r.ret, EINVAL);
        let r = env.vcpu_op(mop(MemOp::sida_write(0, vec![1; 8])).sida_offset(0x1C0));
        assert_eq!(r.ret, EINVAL);
    }
}

/// MEMOP-059 `test_errors_cmpxchg` bad size: every size 0..31 but 1, 2, 4, 8, 16 →
/// EINVAL (§3.4, §7).
#[test]
fn memop_059_cmpxchg_bad_size() {
    for p in profiles() {
        let env = Env::new(p);
        let (mem1, _) = prepare_mem12(59);
        let mut sizes = 0;
        for i in (0u32..32).filter(|i| ![1, 2, 4, 8, 16].contains(i)) {
            let m = mop(MemOp::absolute_cmpxchg(
                MEM1_GPA,
                mem1.clone(),
                vec![0x55; 16],
            ))
            .size(i);
            assert_eq!(env.vm_op(m).ret, EINVAL, "size {i}");
            sizes += 1;
        }
        assert_eq!(sizes, 27);
    }
}

/// MEMOP-060: cmpxchg outside memory → > 0; [kernel-derived] 5 (§7 step 2).
#[test]
fn memop_060_cmpxchg_bad_address() {
    for p in profiles() {
        let env = Env::new(p);
        for i in [1usize, 2, 4, 8, 16] {
            let m = mop(MemOp::absolute_cmpxchg(
                0xFFFF_FFFF_FFFF_F000,
                vec![1; i],
                vec![0; i],
            ));
            assert_eq!(env.vm_op(m).ret, 5, "size {i}");
        }
    }
}

/// MEMOP-061: misaligned cmpxchg → EINVAL (§7 step 1).
#[test]
fn memop_061_cmpxchg_misaligned() {
    for p in profiles() {
        let env = Env::new(p);
        for i in [2usize, 4, 8, 16] {
            let m = mop(MemOp::absolute_cmpxchg(
                MEM1_GPA + 1,
                vec![1; i],
                vec![0; i],
            ));
            assert_eq!(env.vm_op(m).ret, EINVAL, "size {i}");
        }
    }
}

/// MEMOP-062: the ignored union bytes (key 'g' without the SKEY flag, text in pad1
/// and old_addr) change nothing (§2.2): the op behaves as with a zero union.
#[test]
fn memop_062_reserved_bytes_are_ignored() {
    for p in profiles() {
        let mut env = Env::new(p);
        env.guest_copy_key_fetch_prot();
        let m = mop(MemOp::logical_write(MEM1_GVA, vec![7; 4096]));
        assert_eq!(m.as_struct().key(), b'g');
        let zero_union = MemOp::logical_write(MEM1_GVA, vec![7; 4096]);
        assert_eq!(env.vcpu_op(m).ret, env.vcpu_op(zero_union).ret);
        let m = mop(MemOp::absolute_read(MEM1_GPA, 4096));
        let r = env.vm_op(m);
        assert_eq!((r.ret, r.data), (0, vec![7; 4096]));
        let m = mop(MemOp::raw(KVM_S390_MEMOP_LOGICAL_WRITE, MEM1_GVA, 16));
        assert_eq!(env.vcpu_op(m).ret, 0);
    }
}

/// MEMOP-063: CHECK_ONLY gives the real access's result in every CHECK_N_DO pair (the
/// helpers assert it), and leaves guest memory and the user buffer untouched (§3.10).
#[test]
fn memop_063_check_only_equivalence_and_no_side_effects() {
    for p in profiles() {
        let mut env = Env::new(p);
        env.guest_copy_key();
        let before = env.read_abs(MEM1_GPA, SIZE as usize);
        let keys: Vec<_> = (0..16)
            .map(|i| {
                env.vm
                    .storage_key(s390_gaccess::addr::AbsoluteAddress(MEM1_GPA + i * 4096))
                    .unwrap()
            })
            .collect();
        let r = env.vcpu_op(
            mop(MemOp::logical_write(MEM1_GVA, vec![1; SIZE as usize]))
                .key(9)
                .check_only(),
        );
        assert_eq!(r.ret, 0);
        let r = env.vm_op(
            mop(MemOp::absolute_write(MEM1_GPA, vec![1; SIZE as usize]))
                .key(9)
                .check_only(),
        );
        assert_eq!(r.ret, 0);
        let r = env.vcpu_op(
            mop(MemOp::logical_read(MEM1_GVA, SIZE))
                .check_only()
                .null_buf(),
        );
        assert_eq!(r.ret, 0, "CHECK_ONLY never touches buf");
        assert_eq!(env.read_abs(MEM1_GPA, SIZE as usize), before);
        for (i, k) in keys.iter().enumerate() {
            let now = env
                .vm
                .storage_key(s390_gaccess::addr::AbsoluteAddress(
                    MEM1_GPA + i as u64 * 4096,
                ))
                .unwrap();
            assert_eq!(now, *k, "data frames' keys untouched");
        }
        assert_eq!(Errno::from_ret(r.ret), None);
    }
}
