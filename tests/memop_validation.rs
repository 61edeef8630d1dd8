//! One test per rule of the ioctl layer: dispatch, validation order, the moments of
//! the user copies, CHECK_ONLY, the pgm record, SIDA, and the profile differences.
//! § numbers cite kernel-semantics.md.

#[path = "memop_support.rs"]
mod support;

use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::dat::Asce;
use s390_gaccess::dat::TableLevel;
use s390_gaccess::dat::builder::entry_address;
use s390_gaccess::exception::{PgmInfo, Teid};
use s390_gaccess::keys::StorageKey;
use s390_gaccess::memop::abi::*;
use s390_gaccess::memop::{
    KvmS390MemOp, MemOp, Profile, UserBuffer, UserMemory, check_extension, sida_size, vcpu_mem_op,
    vm_mem_op,
};
use s390_gaccess::vcpu::Vcpu;
use s390_gaccess::vm::Vm;
use support::*;

const EINVAL: i32 = -22;
const E2BIG: i32 = -7;
const EFAULT: i32 = -14;
const UNMAPPED_GVA: u64 = MEM1_GVA + 2 * SIZE as u64;

fn key_at(env: &Env, gpa: u64) -> StorageKey {
    env.vm.storage_key(AbsoluteAddress(gpa)).unwrap()
}

// ---- §2 ABI -----------------------------------------------------------------------

/// §2.1: ioctl number and capability answers, the same for both profiles.
#[test]
fn s2_1_ioctl_number_and_capabilities() {
    assert_eq!(KVM_S390_MEM_OP, 0x4040_AEB1);
    assert_eq!(check_extension(KVM_CAP_S390_MEM_OP), 65536);
    assert_eq!(check_extension(KVM_CAP_S390_MEM_OP_EXTENSION), 3);
    assert_eq!(
        KVM_S390_MEMOP_EXTENSION_CAP_BASE | KVM_S390_MEMOP_EXTENSION_CAP_CMPXCHG,
        3
    );
    assert_eq!(check_extension(1), 0);
    assert_eq!(KVM_S390_GET_SKEYS_NONE, 1);
}

/// §2.2: the struct is 64 bytes, 8-aligned, big-endian, with the union overlays.
#[test]
fn s2_2_struct_layout() {
    assert_eq!(std::mem::size_of::<KvmS390MemOp>(), 64);
    assert_eq!(std::mem::align_of::<KvmS390MemOp>(), 8);
    let mut bytes = [0u8; 64];
    bytes[7] = 0x10; // gaddr = 0x10
    bytes[19] = 8; // size = 8
    bytes[23] = 4; // op = 4
    bytes[32] = 0x01; // ar
    bytes[33] = 0xC0; // key
    bytes[47] = 0x99; // old_addr
    let m = KvmS390MemOp::from_be_bytes(&bytes);
    assert_eq!(
        (m.gaddr(), m.size(), m.op(), m.ar(), m.key()),
        (0x10, 8, 4, 1, 0xC0)
    );
    assert_eq!(m.sida_offset(), 0x01C0_0000);
    assert_eq!(m.old_addr(), 0x99);
    assert_eq!(m.to_be_bytes(), bytes);
}

/// §2.2: pad1 and old_addr are ignored by non-cmpxchg ops; key is ignored without
/// SKEY_PROTECTION (MEMOP-062).
#[test]
fn s2_2_ignored_fields() {
    let mut env = Env::new(Profile::Linux70);
    let mut u = [0xEEu8; 32];
    u[0] = 0;
    let r = env.vcpu_op(MemOp::logical_write(MEM1_GVA, vec![3; 8]).reserved(u));
    assert_eq!(r.ret, 0);
    let r = env.vm_op(MemOp::absolute_read(MEM1_GPA, 8).reserved(u));
    assert_eq!((r.ret, r.data), (0, vec![3; 8]));
}

// ---- §3.1 VM ioctl ------------------------------------------------------------------

/// §3.1 step 1: a protected VM gets -EINVAL before the op is looked at.
#[test]
fn s3_1_protected_vm_is_rejected_first() {
    let mut vm = Vm::with_memory(0x10000).unwrap();
    vm.set_protected(true);
    for op in [4, 5, 6, 0, 99, u32::MAX] {
        let r = MemOp::raw(op, 0, 8).run_vm(&vm);
        assert_eq!(r.ret, EINVAL, "op {op}");
    }
    // Even an otherwise E2BIG request.
    assert_eq!(MemOp::absolute_read(0, u32::MAX).run_vm(&vm).ret, EINVAL);
}

/// §3.1 step 2: the VM fd takes ops 4, 5, 6 only.
#[test]
fn s3_1_vm_dispatch() {
    let vm = Vm::with_memory(0x10000).unwrap();
    for op in [0, 1, 2, 3, 7, 0x100, u32::MAX] {
        assert_eq!(MemOp::raw(op, 0, 8).run_vm(&vm).ret, EINVAL, "op {op}");
    }
    assert_eq!(MemOp::absolute_read(0, 8).run_vm(&vm).ret, 0);
}

// ---- §3.2 common validation ---------------------------------------------------------

/// §3.2 step 1: an unsupported flag or size 0 is -EINVAL, before the size limit.
#[test]
fn s3_2_flags_and_size_zero_first() {
    let vm = Vm::with_memory(0x10000).unwrap();
    // INJECT_EXCEPTION is not supported by absolute ops.
    let r = MemOp::absolute_read(0, u32::MAX).inject().run_vm(&vm);
    assert_eq!(r.ret, EINVAL);
    // Any unknown flag bit.
    for bit in 3..64 {
        let r = MemOp::absolute_read(0, 8).flags(1 << bit).run_vm(&vm);
        assert_eq!(r.ret, EINVAL, "flag bit {bit}");
    }
    assert_eq!(MemOp::absolute_read(0, 0).run_vm(&vm).ret, EINVAL);
}

/// §3.2 step 2: size > 65536 is -E2BIG; 65536 is fine.
#[test]
fn s3_2_size_limit() {
    let vm = Vm::with_memory(0x20000).unwrap();
    assert_eq!(MemOp::absolute_read(0, 65537).run_vm(&vm).ret, E2BIG);
    assert_eq!(MemOp::absolute_read(0, 65536).run_vm(&vm).ret, 0);
}

/// §3.2 step 3: a key > 15 is -EINVAL only with SKEY_PROTECTION, after E2BIG.
#[test]
fn s3_2_key_checked_last_and_only_with_the_flag() {
    let vm = Vm::with_memory(0x20000).unwrap();
    assert_eq!(
        MemOp::absolute_read(0, 65537).key(16).run_vm(&vm).ret,
        E2BIG
    );
    assert_eq!(MemOp::absolute_read(0, 8).key(16).run_vm(&vm).ret, EINVAL);
    assert_eq!(MemOp::absolute_read(0, 8).key(15).run_vm(&vm).ret, 0);
    assert_eq!(MemOp::absolute_read(0, 8).key_byte(0xFF).run_vm(&vm).ret, 0);
}

// ---- §3.3 absolute read/write -------------------------------------------------------

/// §3.3 step 4: CHECK_ONLY never touches `buf` (NULL is fine).
#[test]
fn s3_3_check_only_does_not_touch_buf() {
    let vm = Vm::with_memory(0x10000).unwrap();
    for op in [KVM_S390_MEMOP_ABSOLUTE_READ, KVM_S390_MEMOP_ABSOLUTE_WRITE] {
        let r = MemOp::raw(op, 0, 4096).check_only().null_buf().run_vm(&vm);
        assert_eq!(r.ret, 0);
    }
}

/// §3.3 step 4: a write copies from `buf` before any guest access; a read copies to
/// `buf` only after success, so a failed copy-out leaves the guest read (-EFAULT).
#[test]
fn s3_3_copy_moments() {
    let vm = Vm::with_memory(0x10000).unwrap();
    vm.storage()
        .write(AbsoluteAddress(0x1000), &[9; 16])
        .unwrap();
    let r = MemOp::absolute_write(0x1000, vec![1; 16])
        .null_buf()
        .run_vm(&vm);
    assert_eq!(r.ret, EFAULT);
    let r = MemOp::absolute_read(0x1000, 16).null_buf().run_vm(&vm);
    assert_eq!(r.ret, EFAULT);
    let mut b = [0u8; 16];
    vm.storage().read(AbsoluteAddress(0x1000), &mut b).unwrap();
    assert_eq!(b, [9; 16]);
    // A read that fails leaves the buffer alone.
    let r = MemOp::absolute_read(0xF000, 0x2000).run_vm(&vm);
    assert_eq!(r.ret, 5);
    assert!(r.data.iter().all(|&x| x == 0));
}

/// §6.1: no pre-check: a write into a non-memory page leaves earlier pages written;
/// so does a key failure on a later page.
#[test]
fn s6_1_absolute_write_is_partial() {
    for p in profiles() {
        let vm = Vm::with_memory(0x4000).unwrap();
        let r = MemOp::absolute_write(0x3000, vec![7; 0x2000])
            .profile(p)
            .run_vm(&vm);
        assert_eq!(r.ret, 5);
        let mut b = [0u8; 0x1000];
        vm.storage().read(AbsoluteAddress(0x3000), &mut b).unwrap();
        assert_eq!(b, [7; 0x1000]);

        vm.enable_keys();
        vm.set_storage_key(AbsoluteAddress(0x1000), StorageKey(0x30))
            .unwrap();
        vm.set_storage_key(AbsoluteAddress(0x2000), StorageKey(0x40))
            .unwrap();
        let r = MemOp::absolute_write(0x1000, vec![8; 0x2000])
            .key(3)
            .profile(p)
            .run_vm(&vm);
        assert_eq!(r.ret, 4);
        vm.storage().read(AbsoluteAddress(0x1000), &mut b).unwrap();
        assert_eq!(b, [8; 0x1000]);
        vm.storage().read(AbsoluteAddress(0x2000), &mut b).unwrap();
        assert_eq!(b, [0; 0x1000]);
        // §10.3: R and C on the written page, unchanged on the refused one.
        assert_eq!(
            vm.storage_key(AbsoluteAddress(0x1000)).unwrap(),
            StorageKey(0x36)
        );
        assert_eq!(
            vm.storage_key(AbsoluteAddress(0x2000)).unwrap(),
            StorageKey(0x40)
        );
    }
}

/// §6.1, §8.6: absolute ops have no prefixing and no LAP; logical ops with DAT off
/// have both (§5.7, §8.1).
#[test]
fn s6_1_absolute_ops_ignore_prefix_and_lap() {
    let vm = Vm::with_memory(0x10000).unwrap();
    let mut vcpu = Vcpu::new();
    vcpu.prefix = 0x8000;
    vcpu.cr[0] |= 0x1000_0000;
    assert_eq!(
        MemOp::logical_write(0x10, vec![5; 4])
            .run_vcpu(&vm, &mut vcpu)
            .ret,
        4
    );
    assert_eq!(
        MemOp::logical_write(0x300, vec![6; 4])
            .run_vcpu(&vm, &mut vcpu)
            .ret,
        0
    );
    assert_eq!(MemOp::absolute_write(0x10, vec![5; 4]).run_vm(&vm).ret, 0);
    let mut b = [0u8; 4];
    vm.storage().read(AbsoluteAddress(0x8300), &mut b).unwrap();
    assert_eq!(b, [6; 4], "logical real 0x300 is absolute prefix + 0x300");
    vm.storage().read(AbsoluteAddress(0x10), &mut b).unwrap();
    assert_eq!(b, [5; 4], "absolute 0x10 is not prefixed");
}

// ---- §3.4 cmpxchg -------------------------------------------------------------------

/// §3.4: CHECK_ONLY and INJECT are -EINVAL for cmpxchg, as are sizes > 16 (before any
/// copy).
#[test]
fn s3_4_cmpxchg_validation() {
    let vm = Vm::with_memory(0x10000).unwrap();
    let m = || MemOp::absolute_cmpxchg(0, vec![1; 8], vec![0; 8]);
    assert_eq!(m().check_only().run_vm(&vm).ret, EINVAL);
    assert_eq!(m().inject().run_vm(&vm).ret, EINVAL);
    assert_eq!(m().size(17).null_buf().null_old().run_vm(&vm).ret, EINVAL);
    assert_eq!(m().size(65537).run_vm(&vm).ret, E2BIG);
    assert_eq!(m().size(0).run_vm(&vm).ret, EINVAL);
}

/// §3.4 step 3: `new` from `buf`, then `old` from `old_addr`; either failing is
/// -EFAULT and nothing else happens.
#[test]
fn s3_4_cmpxchg_copies_in() {
    let vm = Vm::with_memory(0x10000).unwrap();
    let r = MemOp::absolute_cmpxchg(0, vec![1; 8], vec![0; 8])
        .null_buf()
        .run_vm(&vm);
    assert_eq!(r.ret, EFAULT);
    let r = MemOp::absolute_cmpxchg(0, vec![1; 8], vec![0; 8])
        .null_old()
        .run_vm(&vm);
    assert_eq!(r.ret, EFAULT);
    let r = MemOp::absolute_cmpxchg(0, vec![1; 8], vec![0; 4]).run_vm(&vm);
    assert_eq!(
        (r.ret, r.old),
        (EFAULT, vec![0; 4]),
        "old buffer shorter than size"
    );
    let mut b = [0u8; 8];
    vm.storage().read(AbsoluteAddress(0), &mut b).unwrap();
    assert_eq!(b, [0; 8]);
}

/// §7 table: exchanged (old unchanged, new stored, R and C), unequal (old := memory,
/// R only), key protection (old := zeros, memory and R/C unchanged).
#[test]
fn s7_cmpxchg_outcomes() {
    let vm = Vm::with_memory(0x10000).unwrap();
    vm.enable_keys();
    vm.storage()
        .write(AbsoluteAddress(0x2000), &[0xAB; 8])
        .unwrap();
    vm.set_storage_key(AbsoluteAddress(0x2000), StorageKey(0x10))
        .unwrap();
    let r = MemOp::absolute_cmpxchg(0x2000, vec![1; 8], vec![2; 8])
        .key(1)
        .run_vm(&vm);
    assert_eq!(
        (r.ret, r.old.clone(), r.exchanged),
        (0, vec![0xAB; 8], Some(false))
    );
    assert_eq!(
        vm.storage_key(AbsoluteAddress(0x2000)).unwrap(),
        StorageKey(0x14)
    );
    let r = MemOp::absolute_cmpxchg(0x2000, vec![1; 8], vec![0xAB; 8])
        .key(1)
        .run_vm(&vm);
    assert_eq!((r.ret, r.exchanged), (0, Some(true)));
    assert_eq!(
        vm.storage_key(AbsoluteAddress(0x2000)).unwrap(),
        StorageKey(0x16)
    );
    let r = MemOp::absolute_cmpxchg(0x2000, vec![2; 8], vec![1; 8])
        .key(2)
        .run_vm(&vm);
    assert_eq!((r.ret, r.old), (4, vec![0; 8]));
    let mut b = [0u8; 8];
    vm.storage().read(AbsoluteAddress(0x2000), &mut b).unwrap();
    assert_eq!(b, [1; 8]);
}

/// §13.1 Q3: a store-protected operand (F = 0, key ≠ ACC) gives 4 even when the
/// compare would be unequal; C is not set.
#[test]
fn s13_1_q3_cmpxchg_store_protected_unequal() {
    let vm = Vm::with_memory(0x10000).unwrap();
    vm.enable_keys();
    vm.set_storage_key(AbsoluteAddress(0x3000), StorageKey(0x30))
        .unwrap();
    let r = MemOp::absolute_cmpxchg(0x3000, vec![1; 4], vec![5; 4])
        .key(5)
        .run_vm(&vm);
    assert_eq!((r.ret, r.old), (4, vec![0; 4]));
    assert_eq!(
        vm.storage_key(AbsoluteAddress(0x3000)).unwrap(),
        StorageKey(0x30)
    );
}

// ---- §3.5 vCPU dispatch -------------------------------------------------------------

/// §3.5: the vCPU fd takes ops 0-3 only; absolute ops are -EINVAL there.
#[test]
fn s3_5_vcpu_dispatch() {
    let mut env = Env::new(Profile::Linux70);
    for op in [4, 5, 6, 7, u32::MAX] {
        assert_eq!(
            env.vcpu_op(MemOp::raw(op, MEM1_GVA, 8)).ret,
            EINVAL,
            "op {op}"
        );
    }
}

// ---- §3.6 logical ---------------------------------------------------------------------

/// §3.6 order: flags/size 0 → E2BIG → key → ar → protected.
#[test]
fn s3_6_validation_order() {
    let mut env = Env::new(Profile::Linux70);
    let m = || MemOp::logical_read(MEM1_GVA, 8);
    assert_eq!(
        env.vcpu_op(m().ar(16).size(65537)).ret,
        E2BIG,
        "E2BIG before ar (§3.7)"
    );
    assert_eq!(env.vcpu_op(m().ar(16).size(0)).ret, EINVAL);
    assert_eq!(env.vcpu_op(m().ar(16).key(16)).ret, EINVAL);
    assert_eq!(env.vcpu_op(m().ar(255)).ret, EINVAL);
    assert_eq!(
        env.vcpu_op(m().ar(15)).ret,
        0,
        "ar checked but primary space"
    );
    env.vcpu.protected = true;
    assert_eq!(env.vcpu_op(m().size(65537)).ret, E2BIG);
    assert_eq!(env.vcpu_op(m()).ret, EINVAL);
    assert_eq!(env.vcpu_op(m().check_only()).ret, EINVAL);
}

/// §3.6 step 6: a store copies from `buf` before translating: -EFAULT even for an
/// unmapped address, no record, no injection.
#[test]
fn s3_6_store_copies_before_translation() {
    let mut env = Env::new(Profile::Linux70);
    let r = env.vcpu_op(
        MemOp::logical_write(UNMAPPED_GVA, vec![1; 8])
            .null_buf()
            .inject(),
    );
    assert_eq!(r.ret, EFAULT);
    assert_eq!(env.vcpu.pgm, PgmInfo::default());
    assert_eq!(env.vcpu.pending_pgm, None);
}

/// §3.6 step 6: a fetch that succeeds but cannot copy out is -EFAULT; one that fails
/// returns its code without touching `buf`.
#[test]
fn s3_6_fetch_copy_out() {
    let mut env = Env::new(Profile::Linux70);
    let r = env.vcpu_op(MemOp::logical_read(MEM1_GVA, 8).null_buf().inject());
    assert_eq!((r.ret, env.vcpu.pending_pgm), (EFAULT, None));
    let r = env.vcpu_op(MemOp::logical_read(UNMAPPED_GVA, 8).null_buf().inject());
    assert_eq!(r.ret, 0x11);
    assert!(env.vcpu.pending_pgm.is_some());
}

/// §3.6 step 7, §9.3: a positive result leaves `trans_exc`'s record in vcpu.pgm (also
/// for CHECK_ONLY), and INJECT queues it; without INJECT nothing is pending.
#[test]
fn s3_6_pgm_record_and_injection() {
    let mut env = Env::new(Profile::Linux70);
    let r = env.vcpu_op(MemOp::logical_read(UNMAPPED_GVA, 8).ar(5));
    assert_eq!(r.ret, 0x11);
    let want = PgmInfo {
        code: 0x11,
        teid: Teid(UNMAPPED_GVA | 0x800),
        exc_access_id: 5,
        ..PgmInfo::default()
    };
    assert_eq!((env.vcpu.pgm, r.pgm), (want, Some(want)));
    assert_eq!(env.vcpu.pending_pgm, None);
    env.vcpu.pgm = PgmInfo::default();
    let r = env.vcpu_op(
        MemOp::logical_write(UNMAPPED_GVA, vec![0; 8])
            .check_only()
            .inject(),
    );
    assert_eq!(r.ret, 0x11);
    assert_eq!(env.vcpu.pgm.teid, Teid(UNMAPPED_GVA | 0x400));
    assert_eq!(env.vcpu.pending_pgm.map(|p| p.code), Some(0x11));
}

/// §3.11: negative results never inject and leave the record alone.
#[test]
fn s3_11_errors_never_inject() {
    let mut env = Env::new(Profile::Linux70);
    let r = env.vcpu_op(MemOp::logical_read(UNMAPPED_GVA, 65537).inject());
    assert_eq!(r.ret, E2BIG);
    assert_eq!(
        (env.vcpu.pgm, env.vcpu.pending_pgm),
        (PgmInfo::default(), None)
    );
}

/// §5.10 item 1: CHECK_ONLY checks page by page (key failure on page 0 wins), the
/// real access translates all pages first (page 1's translation exception wins).
#[test]
fn s5_10_check_only_and_real_access_order() {
    let mut env = Env::new(Profile::Linux70);
    env.guest_set_keys(MEM2_GVA + SIZE as u64 - 4096, 4096, 0x98);
    let gaddr = MEM2_GVA + SIZE as u64 - 4096;
    let m = MemOp::logical_read(gaddr, 8192).key(2);
    assert_eq!(env.vcpu_op(m.clone().check_only()).ret, 4);
    assert_eq!(env.vcpu_op(m).ret, 0x11);
}

/// §5.10 item 2, §9.4: a store key failure on page 1 terminates in the real access
/// (bits 56/60/61 clear) and suppresses in CHECK_ONLY (bit 60).
#[test]
fn s5_10_termination_only_in_real_access() {
    let mut env = Env::new(Profile::Linux70);
    env.guest_error_key();
    let m = MemOp::logical_write(MEM1_GVA, vec![1; 8192]).key(1);
    assert_eq!(env.vcpu_op(m.clone().check_only()).ret, 4);
    assert_eq!(
        env.vcpu.pgm.teid,
        Teid((MEM1_GVA + 4096) | 0x400 | Teid::B60)
    );
    assert_eq!(env.vcpu_op(m).ret, 4);
    assert_eq!(env.vcpu.pgm.teid, Teid((MEM1_GVA + 4096) | 0x400));
    // A fetch never terminates.
    assert_eq!(
        env.vcpu_op(MemOp::logical_read(MEM1_GVA, 8192).key(1)).ret,
        4
    );
    assert_eq!(
        env.vcpu.pgm.teid,
        Teid((MEM1_GVA + 4096) | 0x800 | Teid::B60)
    );
}

/// §8.1: LAP refuses logical stores to 0..511 (TEID bit 56), not fetches, not
/// absolute stores.
#[test]
fn s8_1_low_address_protection() {
    let vm = Vm::with_memory(0x10000).unwrap();
    let mut vcpu = Vcpu::new();
    vcpu.cr[0] |= 0x1000_0000;
    let r = MemOp::logical_write(0x100, vec![1; 4]).run_vcpu(&vm, &mut vcpu);
    assert_eq!(r.ret, 4);
    assert_eq!(vcpu.pgm.teid, Teid(0x400 | Teid::B56));
    assert_eq!(
        MemOp::logical_read(0x100, 4).run_vcpu(&vm, &mut vcpu).ret,
        0
    );
    assert_eq!(
        MemOp::logical_write(0x200, vec![1; 4])
            .run_vcpu(&vm, &mut vcpu)
            .ret,
        0
    );
    assert_eq!(MemOp::absolute_write(0x100, vec![1; 4]).run_vm(&vm).ret, 0);
}

/// §8.2: a DAT-protected page refuses stores with TEID bit 61, whatever the key.
#[test]
fn s8_2_dat_protection() {
    let mut env = Env::new(Profile::Linux70);
    let asce = Asce(env.vcpu.cr[1]);
    let pte = entry_address(env.vm.storage(), asce, MEM1_GVA, TableLevel::Page).unwrap();
    let e = env.vm.storage().read_u64(pte).unwrap();
    env.vm.storage().write_u64(pte, e | 0x200).unwrap();
    let r = env.vcpu_op(MemOp::logical_write(MEM1_GVA, vec![1; 8]).ar(3));
    assert_eq!(r.ret, 4);
    let want = PgmInfo {
        code: 4,
        teid: Teid(MEM1_GVA | 0x400 | Teid::B61),
        exc_access_id: 3,
        ..Default::default()
    };
    assert_eq!(env.vcpu.pgm, want);
    assert_eq!(env.vcpu_op(MemOp::logical_read(MEM1_GVA, 8)).ret, 0);
}

/// §10.1: while keys are not in use every frame has key 0: keyed stores fail, keyed
/// fetches succeed.
#[test]
fn s10_1_keys_not_in_use() {
    let mut env = Env::new(Profile::Linux70);
    assert!(!env.vm.keys_in_use());
    assert_eq!(
        env.vcpu_op(MemOp::logical_write(MEM1_GVA, vec![1; 8]).key(3))
            .ret,
        4
    );
    assert_eq!(env.vcpu_op(MemOp::logical_read(MEM1_GVA, 8).key(3)).ret, 0);
    assert_eq!(
        env.vm_op(MemOp::absolute_write(MEM1_GPA, vec![1; 8]).key(3))
            .ret,
        4
    );
    assert_eq!(env.vm_op(MemOp::absolute_read(MEM1_GPA, 8).key(3)).ret, 0);
    assert!(!env.vm.keys_in_use(), "memops do not put keys in use");
}

/// §10.3: a fetch sets R, a store R and C on the data frames; CHECK_ONLY and failing
/// accesses set R on the table frames only.
#[test]
fn s10_3_reference_and_change_bits() {
    let mut env = Env::new(Profile::Linux70);
    env.vm.enable_keys();
    assert_eq!(env.vcpu_op(MemOp::logical_read(MEM1_GVA, 8)).ret, 0);
    assert_eq!(key_at(&env, MEM1_GPA), StorageKey(0x04));
    assert_eq!(
        env.vcpu_op(MemOp::logical_write(MEM2_GVA, vec![1; 8])).ret,
        0
    );
    assert_eq!(key_at(&env, MEM2_GPA), StorageKey(0x06));
    assert_eq!(
        env.vcpu_op(MemOp::logical_write(MEM1_GVA + 4096, vec![1; 8]).check_only())
            .ret,
        0
    );
    assert_eq!(key_at(&env, MEM1_GPA + 4096), StorageKey(0));
    assert!(
        key_at(&env, TABLES).referenced(),
        "region-first table frame"
    );
}

// ---- §3.8 SIDA ----------------------------------------------------------------------

fn pv_vcpu(sida_len: usize) -> (Vm, Vcpu) {
    let vm = Vm::with_memory(0x10000).unwrap();
    let mut vcpu = Vcpu::new();
    vcpu.protected = true;
    vcpu.sida = (0..sida_len).map(|i| i as u8).collect();
    (vm, vcpu)
}

/// §3.8 order: flags ≠ 0 / size 0 → EINVAL; offset overflow → EINVAL; beyond the
/// SIDA → E2BIG; non-protected → EINVAL.
#[test]
fn s3_8_sida_validation_order() {
    let (vm, mut vcpu) = pv_vcpu(4096);
    let run = |m: MemOp, v: &mut Vcpu| m.run_vcpu(&vm, v).ret;
    assert_eq!(run(MemOp::sida_read(0, 8).check_only(), &mut vcpu), EINVAL);
    assert_eq!(run(MemOp::sida_read(0, 0), &mut vcpu), EINVAL);
    assert_eq!(run(MemOp::sida_read(u32::MAX, 2), &mut vcpu), EINVAL);
    assert_eq!(run(MemOp::sida_read(0xFFFF_0000, 0xFFFF), &mut vcpu), E2BIG);
    assert_eq!(run(MemOp::sida_read(4000, 97), &mut vcpu), E2BIG);
    assert_eq!(run(MemOp::sida_read(4000, 96), &mut vcpu), 0);
    vcpu.protected = false;
    assert_eq!(
        run(MemOp::sida_read(4000, 97), &mut vcpu),
        E2BIG,
        "non-PV limit 4096"
    );
    assert_eq!(run(MemOp::sida_read(4000, 96), &mut vcpu), EINVAL);
}

/// §3.8 step 5: SIDA copies, without the 64 KiB limit; a bad `buf` is -EFAULT.
#[test]
fn s3_8_sida_copies() {
    let (vm, mut vcpu) = pv_vcpu(20 * 4096);
    assert_eq!(sida_size(&vcpu), 20 * 4096);
    let r = MemOp::sida_read(0x10, 4).run_vcpu(&vm, &mut vcpu);
    assert_eq!((r.ret, r.data), (0, vec![0x10, 0x11, 0x12, 0x13]));
    let r = MemOp::sida_write(0x100, vec![0xEE; 70000]).run_vcpu(&vm, &mut vcpu);
    assert_eq!(r.ret, 0);
    assert_eq!(vcpu.sida[0x100..0x100 + 70000], vec![0xEE; 70000][..]);
    let r = MemOp::sida_read(0, 8).null_buf().run_vcpu(&vm, &mut vcpu);
    assert_eq!(r.ret, EFAULT);
    let r = MemOp::sida_write(0, vec![1; 8])
        .null_buf()
        .run_vcpu(&vm, &mut vcpu);
    assert_eq!(r.ret, EFAULT);
    assert_eq!(vcpu.sida[..8], [0, 1, 2, 3, 4, 5, 6, 7]);
}

/// §3.8: `sida_size` is whole pages; a short SIDA reads as zeros past its end and is
/// zero-extended by a write there.
#[test]
fn s3_8_sida_size_rounding() {
    let (vm, mut vcpu) = pv_vcpu(100);
    assert_eq!(sida_size(&vcpu), 4096);
    let r = MemOp::sida_read(96, 8).run_vcpu(&vm, &mut vcpu);
    assert_eq!(r.data, [96, 97, 98, 99, 0, 0, 0, 0]);
    assert_eq!(
        MemOp::sida_write(4000, vec![1; 96])
            .run_vcpu(&vm, &mut vcpu)
            .ret,
        0
    );
    assert_eq!(vcpu.sida.len(), 4096);
    let (_, big) = pv_vcpu(2 << 20);
    assert_eq!(sida_size(&big), 256 * 4096);
}

/// §2.2: `sida_offset` overlays `ar`: an `ar` byte makes a huge offset.
#[test]
fn s2_2_sida_offset_is_ar_key_bytes() {
    let (vm, mut vcpu) = pv_vcpu(4096);
    let r = MemOp::sida_read(0, 8).ar(1).run_vcpu(&vm, &mut vcpu);
    assert_eq!(r.ret, E2BIG);
    let r = MemOp::sida_read(0, 8)
        .key_byte(0x01)
        .run_vcpu(&vm, &mut vcpu);
    assert_eq!(r.ret, E2BIG, "offset 0x10000");
    let m = MemOp::sida_read(0x10, 2);
    assert_eq!(
        (
            m.as_struct().ar(),
            m.as_struct().key(),
            m.as_struct().pad1()[1]
        ),
        (0, 0, 0x10)
    );
    assert_eq!(m.run_vcpu(&vm, &mut vcpu).data, [0x10, 0x11]);
}

// ---- §6.4 profile differences -------------------------------------------------------

/// §6.4 row 1: an absolute write with a bad `buf` and a bad gaddr is 5 pre-rewrite
/// (memslot check first) and -EFAULT newest (copy first).
#[test]
fn s6_4_bad_buf_and_bad_gaddr() {
    let vm = Vm::with_memory(0x10000).unwrap();
    let m = MemOp::absolute_write(0x2_0000, vec![1; 8]).null_buf();
    assert_eq!(m.clone().profile(Profile::Linux70).run_vm(&vm).ret, EFAULT);
    assert_eq!(m.profile(Profile::Linux63).run_vm(&vm).ret, 5);
    for p in profiles() {
        let r = MemOp::absolute_read(0x2_0000, 8)
            .null_buf()
            .profile(p)
            .run_vm(&vm);
        assert_eq!(r.ret, 5);
        let r = MemOp::absolute_read(0x2_0000, 8)
            .check_only()
            .profile(p)
            .run_vm(&vm);
        assert_eq!(r.ret, 5, "first page outside (row 3)");
    }
}

/// §6.4 row 2: CHECK_ONLY with key 0 over a later page outside memory: 0 pre-rewrite,
/// 5 newest. With a nonzero key both walk the pages (§6.3).
#[test]
fn s6_4_check_only_key0_later_page_outside() {
    let vm = Vm::with_memory(0x10000).unwrap();
    let m = MemOp::absolute_read(0xF000, 0x2000).check_only();
    assert_eq!(m.clone().profile(Profile::Linux70).run_vm(&vm).ret, 5);
    assert_eq!(m.clone().profile(Profile::Linux63).run_vm(&vm).ret, 0);
    assert_eq!(
        m.clone().key(0).profile(Profile::Linux63).run_vm(&vm).ret,
        0
    );
    assert_eq!(m.key(3).profile(Profile::Linux63).run_vm(&vm).ret, 5);
}

/// §6.4 rows 4-5: cmpxchg outside memory and with sizes that are not powers of two.
#[test]
fn s6_4_cmpxchg_outside_memory_and_odd_sizes() {
    let vm = Vm::with_memory(0x10000).unwrap();
    let cx = |gaddr, size: u32, p| {
        MemOp::absolute_cmpxchg(gaddr, vec![1; 16], vec![0; 16])
            .size(size)
            .profile(p)
            .run_vm(&vm)
    };
    for p in profiles() {
        let r = cx(0x2_0000, 8, p);
        assert_eq!((r.ret, r.old), (5, vec![0; 16]));
        assert_eq!(cx(0x1000, 3, p).ret, EINVAL, "in memory");
        assert_eq!(cx(0x2_0000, 3, p).ret, 5, "aligned for mask 2");
    }
    // gaddr & (3 - 1) != 0: newest fails alignment first, pre-rewrite the memslot check.
    assert_eq!(cx(0x2_0002, 3, Profile::Linux70).ret, EINVAL);
    assert_eq!(cx(0x2_0002, 3, Profile::Linux63).ret, 5);
    assert_eq!(cx(0x2_0001, 2, Profile::Linux70).ret, EINVAL);
    assert_eq!(cx(0x2_0001, 2, Profile::Linux63).ret, 5);
    assert_eq!(
        cx(0x1001, 2, Profile::Linux63).ret,
        EINVAL,
        "misaligned in memory"
    );
}

// ---- user memory ----------------------------------------------------------------------

/// The raw entry points take the struct and user memory directly and leave the
/// buffers as the kernel does.
#[test]
fn raw_entry_points() {
    let env = Env::new(Profile::Linux70);
    let mut mop = KvmS390MemOp::new(KVM_S390_MEMOP_ABSOLUTE_WRITE, MEM1_GPA, 4);
    let mut data = [1u8, 2, 3, 4];
    assert_eq!(
        vm_mem_op(
            &env.vm,
            Profile::Linux70,
            &mop,
            &mut UserMemory::new(&mut data)
        ),
        0
    );
    mop.set_op(KVM_S390_MEMOP_ABSOLUTE_READ);
    let mut out = [0u8; 4];
    assert_eq!(
        vm_mem_op(
            &env.vm,
            Profile::Linux70,
            &mop,
            &mut UserMemory::new(&mut out)
        ),
        0
    );
    assert_eq!(out, [1, 2, 3, 4]);
    let mut vcpu = env.vcpu.clone();
    let mut mop = KvmS390MemOp::new(KVM_S390_MEMOP_LOGICAL_READ, MEM1_GVA, 4);
    let mut out = [0u8; 4];
    let mut user = UserMemory {
        buf: UserBuffer::valid(&mut out),
        old: UserBuffer::Null,
    };
    assert_eq!(
        vcpu_mem_op(&env.vm, &mut vcpu, Profile::Linux70, &mop, &mut user),
        0
    );
    assert_eq!(out, [1, 2, 3, 4]);
    mop.set_gaddr(UNMAPPED_GVA);
    let mut out = [0xCCu8; 4];
    assert_eq!(
        vcpu_mem_op(
            &env.vm,
            &mut vcpu,
            Profile::Linux70,
            &mop,
            &mut UserMemory::new(&mut out)
        ),
        0x11
    );
    assert_eq!(out, [0xCC; 4]);
    let mut mop = KvmS390MemOp::new(KVM_S390_MEMOP_ABSOLUTE_CMPXCHG, MEM1_GPA, 4);
    mop.set_flags(0);
    let (mut new, mut old) = ([9u8; 4], [0u8; 4]);
    let r = vm_mem_op(
        &env.vm,
        Profile::Linux70,
        &mop,
        &mut UserMemory::cmpxchg(&mut new, &mut old),
    );
    assert_eq!((r, old), (0, [1, 2, 3, 4]));
    let r = vm_mem_op(
        &env.vm,
        Profile::Linux70,
        &mop,
        &mut UserMemory::cmpxchg(&mut new, &mut old),
    );
    assert_eq!((r, old), (0, [1, 2, 3, 4]));
    assert_eq!(env.read_abs(MEM1_GPA, 4), [9; 4]);
    assert_eq!(key_at(&env, MEM1_GPA).0 & 0xF8, 0);
}

// ---- fetches read in place -----------------------------------------------------------

/// Run a memop on a user buffer pre-filled with 0xEE; the return and the buffer after.
fn read_into_sentinel(env: &mut Env, mop: &KvmS390MemOp, vm_fd: bool) -> (i32, Vec<u8>) {
    let mut bytes = vec![0xEEu8; mop.size() as usize];
    let mut user = UserMemory::new(&mut bytes);
    let ret = if vm_fd {
        vm_mem_op(&env.vm, env.profile, mop, &mut user)
    } else {
        vcpu_mem_op(&env.vm, &mut env.vcpu, env.profile, mop, &mut user)
    };
    (ret, bytes)
}

/// §3.6 steps 4-6, §5.8, §10.3: a logical read refused by the key of its third page
/// returns PGM 4 with the user buffer untouched (the kernel reads into a scratch
/// buffer), R set on the two pages fetched before the refusal and not on the third;
/// the same read on unprotected pages fills the buffer. The library reads straight
/// into the user buffer, so this pins that it decides every page before moving any.
#[test]
fn s5_8_refused_logical_read_leaves_user_buffer_unchanged() {
    let mut env = Env::new(Profile::Linux70);
    env.vm.enable_keys();
    for i in 0..3u64 {
        env.vm
            .set_storage_key(AbsoluteAddress(MEM1_GPA + i * 4096), StorageKey(0x20))
            .unwrap();
    }
    // The third page: key 9, fetch-protected.
    env.vm
        .set_storage_key(AbsoluteAddress(MEM1_GPA + 0x2000), StorageKey(0x98))
        .unwrap();
    env.vm
        .storage()
        .write(AbsoluteAddress(MEM1_GPA + 0x800), &[0x5A; 0x2000])
        .unwrap();
    let mut mop = KvmS390MemOp::new(KVM_S390_MEMOP_LOGICAL_READ, MEM1_GVA + 0x800, 0x2000);
    mop.set_flags(KVM_S390_MEMOP_F_SKEY_PROTECTION);
    mop.set_key(2);
    let (ret, bytes) = read_into_sentinel(&mut env, &mop, false);
    assert_eq!(ret, 4);
    assert_eq!(
        env.vcpu.pgm.teid,
        Teid((MEM1_GVA + 0x2000) | 0x800 | Teid::B60)
    );
    assert!(bytes.iter().all(|&b| b == 0xEE), "user buffer changed");
    assert_eq!(key_at(&env, MEM1_GPA), StorageKey(0x24));
    assert_eq!(key_at(&env, MEM1_GPA + 0x1000), StorageKey(0x24));
    assert_eq!(key_at(&env, MEM1_GPA + 0x2000), StorageKey(0x98));

    // Now the third page allows key 2: the whole read lands in the buffer.
    env.vm
        .set_storage_key(AbsoluteAddress(MEM1_GPA + 0x2000), StorageKey(0x90))
        .unwrap();
    let (ret, bytes) = read_into_sentinel(&mut env, &mop, false);
    assert_eq!(ret, 0);
    assert_eq!(bytes, vec![0x5A; 0x2000]);
    assert_eq!(key_at(&env, MEM1_GPA + 0x2000), StorageKey(0x94));
}

/// §5.8: a one-page read refused by its key leaves the buffer and the frame's R as
/// they were; a translation exception on a later page leaves no R on any data page.
#[test]
fn s5_8_one_page_refused_read_and_translation_failure() {
    let mut env = Env::new(Profile::Linux70);
    env.vm.enable_keys();
    env.vm
        .set_storage_key(AbsoluteAddress(MEM1_GPA), StorageKey(0x38))
        .unwrap();
    let mut mop = KvmS390MemOp::new(KVM_S390_MEMOP_LOGICAL_READ, MEM1_GVA + 8, 16);
    mop.set_flags(KVM_S390_MEMOP_F_SKEY_PROTECTION);
    mop.set_key(2);
    let (ret, bytes) = read_into_sentinel(&mut env, &mop, false);
    assert_eq!((ret, bytes), (4, vec![0xEE; 16]));
    assert_eq!(key_at(&env, MEM1_GPA), StorageKey(0x38));

    // The last mapped page and the unmapped one after it (invalid PTE): PGM 0x11
    // from phase 1.
    let gaddr = MEM1_GVA + 2 * SIZE as u64 - 8;
    let mop = KvmS390MemOp::new(KVM_S390_MEMOP_LOGICAL_READ, gaddr, 16);
    let last = MEM1_GPA + 2 * SIZE as u64 - 4096;
    let before = key_at(&env, last);
    let (ret, bytes) = read_into_sentinel(&mut env, &mop, false);
    assert_eq!((ret, bytes), (0x11, vec![0xEE; 16]));
    assert_eq!(key_at(&env, last), before);
}

/// §6.1, §3.3: an absolute read whose second fragment is outside memory returns PGM 5
/// with the user buffer untouched and R on the first frame only; one refused by the
/// key of its second frame returns PGM 4 likewise.
#[test]
fn s6_1_failed_absolute_read_leaves_user_buffer_unchanged() {
    let mut env = Env::new(Profile::Linux70);
    env.vm.enable_keys();
    let top = MEMORY - 4096;
    let mop = KvmS390MemOp::new(KVM_S390_MEMOP_ABSOLUTE_READ, top + 0x800, 0x1000);
    let (ret, bytes) = read_into_sentinel(&mut env, &mop, true);
    assert_eq!((ret, bytes), (5, vec![0xEE; 0x1000]));
    assert_eq!(key_at(&env, top), StorageKey(0x04));

    env.vm
        .set_storage_key(AbsoluteAddress(MEM1_GPA), StorageKey(0x30))
        .unwrap();
    env.vm
        .set_storage_key(AbsoluteAddress(MEM1_GPA + 0x1000), StorageKey(0x48))
        .unwrap();
    let mut mop = KvmS390MemOp::new(KVM_S390_MEMOP_ABSOLUTE_READ, MEM1_GPA + 0x800, 0x1000);
    mop.set_flags(KVM_S390_MEMOP_F_SKEY_PROTECTION);
    mop.set_key(3);
    for p in profiles() {
        env.profile = p;
        let (ret, bytes) = read_into_sentinel(&mut env, &mop, true);
        assert_eq!((ret, bytes), (4, vec![0xEE; 0x1000]), "{p:?}");
    }
    assert_eq!(key_at(&env, MEM1_GPA), StorageKey(0x34));
    assert_eq!(key_at(&env, MEM1_GPA + 0x1000), StorageKey(0x48));
}
