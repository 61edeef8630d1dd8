//! Random `struct kvm_s390_mem_op` contents against both entry points on a small
//! guest (§3.9): no panic, a return value from the kernel's set, CHECK_ONLY changes no
//! memory and no key except reference bits of DAT-table (and AR-translation) frames,
//! errors change no memory, and the vCPU's record changes only with a positive return.

use proptest::prelude::*;
use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::dat::builder::{LeafFlags, SpaceBuilder};
use s390_gaccess::dat::{DesignationType, FrameSize};
use s390_gaccess::keys::StorageKey;
use s390_gaccess::memop::abi::*;
use s390_gaccess::memop::{KvmS390MemOp, Profile, UserBuffer, UserMemory, vcpu_mem_op, vm_mem_op};
use s390_gaccess::vcpu::{Psw, SieIntercept, Vcpu};
use s390_gaccess::vm::Vm;

const MEMORY: u64 = 0x10000;
const FRAMES: u64 = MEMORY / 4096;
/// The segment table (16 KiB) and the page table: frames 8 to 12.
const TABLES: u64 = 0x8000;
const TABLE_FRAMES: std::ops::Range<u64> = 8..13;
const BUF_LEN: usize = 0x4000;

const EINVAL: i32 = -22;
const E2BIG: i32 = -7;
const EFAULT: i32 = -14;

/// Everything random about one case.
#[derive(Clone, Debug)]
struct Case {
    vm_fd: bool,
    profile: Profile,
    op: u32,
    flags: u64,
    size: u32,
    gaddr: u64,
    union: [u8; 32],
    buf_valid: bool,
    old_valid: bool,
    keys: Option<[u8; 16]>,
    psw_mask: u64,
    cr0: u64,
    prefix: u32,
    protected: bool,
    ars: [u32; 2],
}

/// Mostly ops of the fd's own kind, sometimes any.
fn op(vm_fd: bool) -> impl Strategy<Value = u32> {
    let own = if vm_fd { 4u32..=6 } else { 0u32..=3 };
    prop_oneof![6 => own, 2 => 0u32..=7, 1 => any::<u32>()]
}

/// Mostly flags the op supports, sometimes any.
fn flags(op: u32) -> impl Strategy<Value = u64> {
    let supported = match op {
        0 | 1 => 7u64,
        4 | 5 => 5,
        6 => 4,
        _ => 0,
    };
    prop_oneof![
        6 => (0u64..=7).prop_map(move |f| f & supported),
        2 => 0u64..=7,
        1 => any::<u64>(),
        1 => (0u32..64).prop_map(|b| 1u64 << b),
    ]
}

fn size() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 1u32..=0x3000,
        2 => prop::sample::select(vec![1u32, 2, 4, 8, 16]),
        1 => Just(0u32),
        1 => prop::sample::select(vec![1u32, 2, 3, 4, 8, 16, 17, 4096, 65536, 65537, u32::MAX]),
        1 => any::<u32>(),
    ]
}

fn gaddr() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..0x11000,
        1 => (0u64..0x2000).prop_map(|o| 0u64.wrapping_sub(o)),
        1 => any::<u64>(),
    ]
}

fn union() -> impl Strategy<Value = [u8; 32]> {
    (any::<[u8; 32]>(), 0u8..8, 0u8..18, 0u8..18).prop_map(|(mut u, mode, ar, key)| {
        match mode {
            0..=3 => u[..2].copy_from_slice(&[ar % 4, key]),
            4 => u[..2].copy_from_slice(&[ar, key]),
            5 => u[..4].fill(0),
            6 => u[..4].copy_from_slice(&(ar as u32 * 100).to_be_bytes()),
            _ => {}
        }
        u
    })
}

fn keys() -> impl Strategy<Value = Option<[u8; 16]>> {
    let key = prop::sample::select(vec![0x00u8, 0x10, 0x18, 0x90, 0x98, 0x20]);
    prop::option::of(prop::array::uniform16(key))
}

fn psw_mask() -> impl Strategy<Value = u64> {
    let dat = prop::bool::ANY.prop_map(|d| if d { Psw::DAT } else { 0 });
    let as_bits = (0u64..4).prop_map(|a| a << Psw::AS_SHIFT);
    let amode = prop::sample::select(vec![Psw::EA | Psw::BA, Psw::BA, 0, Psw::EA]);
    (dat, as_bits, amode).prop_map(|(d, a, m)| d | a | m)
}

/// CR0: the reset value with any of LAP, FPO and SPO.
fn cr0() -> impl Strategy<Value = u64> {
    let bit = |mask: u64| prop::bool::ANY.prop_map(move |on| if on { mask } else { 0 });
    (bit(0x1000_0000), bit(0x0200_0000), bit(0x0100_0000))
        .prop_map(|(lap, fpo, spo)| 0xE0 | lap | fpo | spo)
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::bool::ANY
            .prop_flat_map(|vm_fd| (Just(vm_fd), op(vm_fd)))
            .prop_flat_map(|(vm_fd, op)| (Just(vm_fd), Just(op), flags(op)))
            .prop_flat_map(|(vm_fd, op, flags)| {
                let fixed = (Just(vm_fd), prop::bool::ANY, Just(op), Just(flags));
                (fixed, size(), gaddr(), union())
            })
            .prop_map(|((vm_fd, l63, op, flags), size, gaddr, union)| {
                (vm_fd, l63, op, flags, size, gaddr, union)
            }),
        (prop::bool::weighted(0.9), prop::bool::weighted(0.9), keys()),
        (
            psw_mask(),
            cr0(),
            prop::sample::select(vec![0u32, 0x2000, 0x4000]),
            prop::bool::weighted(0.1),
        ),
        prop::array::uniform2(prop::sample::select(vec![
            0u32,
            1,
            2,
            0x0100_0000,
            0xFF00_0000,
        ])),
    )
        .prop_map(
            |(
                (vm_fd, l63, op, flags, size, gaddr, union),
                (bv, ov, keys),
                (psw_mask, cr0, prefix, protected),
                ars,
            )| Case {
                vm_fd,
                profile: if l63 {
                    Profile::Linux63
                } else {
                    Profile::Linux70
                },
                op,
                flags,
                size,
                gaddr,
                union,
                buf_valid: bv,
                old_valid: ov,
                keys,
                psw_mask,
                cr0,
                prefix,
                protected,
                ars,
            },
        )
}

/// A 64 KiB guest: identity segment-table space over the first 32 KiB (tables in
/// frames 8-12), optional keys on the data frames.
fn guest(c: &Case) -> (Vm, Vcpu) {
    let vm = Vm::with_memory(MEMORY).unwrap();
    let mut b = SpaceBuilder::new(vm.storage(), DesignationType::Segment, TABLES, 0, 0).unwrap();
    b.map(0, 0, 0x8000, FrameSize::Size4K, LeafFlags::default())
        .unwrap();
    for f in 0..8u64 {
        vm.storage()
            .write(AbsoluteAddress(f * 4096 + 0x100), &[f as u8 + 1; 64])
            .unwrap();
    }
    if let Some(keys) = c.keys {
        vm.enable_keys();
        for (f, &k) in keys.iter().enumerate().take(8) {
            vm.set_storage_key(AbsoluteAddress(f as u64 * 4096), StorageKey(k))
                .unwrap();
        }
    }
    let mut vcpu = Vcpu::new();
    vcpu.psw = Psw {
        mask: c.psw_mask,
        addr: 0x2000,
    };
    vcpu.cr[0] = c.cr0;
    vcpu.cr[1] = b.asce().0;
    vcpu.cr[7] = b.asce().0;
    vcpu.cr[13] = b.asce().0;
    vcpu.prefix = c.prefix;
    vcpu.protected = c.protected;
    vcpu.sida = vec![0x5A; 4096];
    vcpu.ar[1] = c.ars[0];
    vcpu.ar[2] = c.ars[1];
    vcpu.intercept = SieIntercept {
        icptcode: 4,
        ipa: 0xB200,
        icptstatus: 0,
        pgmilc: 0,
    };
    (vm, vcpu)
}

fn snapshot(vm: &Vm) -> (Vec<u8>, Vec<u8>) {
    let mut mem = vec![0u8; MEMORY as usize];
    vm.storage().read(AbsoluteAddress(0), &mut mem).unwrap();
    let keys = (0..FRAMES)
        .map(|f| vm.storage_key(AbsoluteAddress(f * 4096)).unwrap().0)
        .collect();
    (mem, keys)
}

fn vcpu_codes() -> Vec<i32> {
    let mut v = vec![0x04, 0x05, 0x10, 0x11, 0x12, 0x38, 0x39, 0x3A, 0x3B];
    v.extend(0x28..=0x2D);
    v
}

/// Keys may differ only in R, and only on the allowed frames.
fn assert_only_reference_bits(before: &[u8], after: &[u8], allowed: &dyn Fn(u64) -> bool) {
    for (f, (b, a)) in before.iter().zip(after).enumerate() {
        if b != a {
            assert_eq!(
                b | StorageKey::REFERENCE,
                *a,
                "frame {f}: only R may be set"
            );
            assert!(
                allowed(f as u64),
                "frame {f}: R set on a frame the check does not read"
            );
        }
    }
}

fn run_case(c: &Case) -> Result<(), TestCaseError> {
    let (vm, mut vcpu) = guest(c);
    let mut mop = KvmS390MemOp::new(c.op, c.gaddr, c.size);
    mop.set_flags(c.flags);
    mop.set_reserved(c.union);
    let mut data: Vec<u8> = (0..BUF_LEN).map(|i| i as u8).collect();
    let data_before = data.clone();
    let mut old = vec![0x11u8; 16];
    let (mem_before, keys_before) = snapshot(&vm);
    let vcpu_before = vcpu.clone();
    let ret = {
        let mut user = UserMemory {
            buf: if c.buf_valid {
                UserBuffer::valid(&mut data)
            } else {
                UserBuffer::Null
            },
            old: if c.old_valid {
                UserBuffer::valid(&mut old)
            } else {
                UserBuffer::Null
            },
        };
        if c.vm_fd {
            vm_mem_op(&vm, c.profile, &mop, &mut user)
        } else {
            vcpu_mem_op(&vm, &mut vcpu, c.profile, &mop, &mut user)
        }
    };
    let (mem_after, keys_after) = snapshot(&vm);

    // The kernel's set of return values (§3.9, §9.1).
    let errnos = [0, EINVAL, E2BIG, EFAULT];
    let allowed = if c.vm_fd { vec![4, 5] } else { vcpu_codes() };
    prop_assert!(
        errnos.contains(&ret) || allowed.contains(&ret),
        "ret {ret} for {c:?}"
    );

    let check_only = c.flags & KVM_S390_MEMOP_F_CHECK_ONLY != 0;
    let ar_mode = !c.vm_fd && c.psw_mask & Psw::DAT != 0 && (c.psw_mask >> Psw::AS_SHIFT) & 3 == 1;
    let prefix_frames = |f: u64| {
        let p = c.prefix as u64 / 4096;
        f == p || f == p + 1 || f < 2
    };
    let reads_tables = |f: u64| TABLE_FRAMES.contains(&f) || (ar_mode && prefix_frames(f));
    if check_only || ret < 0 {
        prop_assert_eq!(&mem_before, &mem_after, "no data moved");
    }
    if check_only {
        assert_only_reference_bits(&keys_before, &keys_after, &reads_tables);
        prop_assert_eq!(&data, &data_before, "buf untouched");
    } else if ret < 0 {
        assert_only_reference_bits(&keys_before, &keys_after, &|_| true);
    }
    let is_read = matches!(
        c.op,
        KVM_S390_MEMOP_LOGICAL_READ | KVM_S390_MEMOP_ABSOLUTE_READ | KVM_S390_MEMOP_SIDA_READ
    );
    if ret != 0 || !is_read {
        prop_assert_eq!(&data, &data_before, "buf written only by a successful read");
    }
    if c.op != KVM_S390_MEMOP_ABSOLUTE_CMPXCHG || !c.vm_fd {
        prop_assert_eq!(&old, &vec![0x11u8; 16], "old written only by cmpxchg");
    }
    if c.vm_fd || ret <= 0 {
        prop_assert_eq!(vcpu.pgm, vcpu_before.pgm);
        prop_assert_eq!(vcpu.pending_pgm, vcpu_before.pending_pgm);
    } else {
        let inject = c.flags & KVM_S390_MEMOP_F_INJECT_EXCEPTION != 0;
        prop_assert_eq!(vcpu.pgm.code as i32, ret);
        prop_assert_eq!(vcpu.pending_pgm.is_some(), inject);
    }
    prop_assert_eq!(&vcpu.psw, &vcpu_before.psw);
    if !(c.op == KVM_S390_MEMOP_SIDA_WRITE && ret == 0 && !c.vm_fd) {
        prop_assert_eq!(&vcpu.sida, &vcpu_before.sida);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any struct on either fd: the kernel's answer, never a panic, no stray changes.
    #[test]
    fn random_structs_get_the_kernels_answer(c in case()) {
        run_case(&c)?;
    }
}

/// A few fixed extremes through the same checks.
#[test]
fn extreme_structs() {
    for vm_fd in [false, true] {
        for op in [0, 1, 2, 3, 4, 5, 6, 7, u32::MAX] {
            for size in [0, 1, 16, 65536, 65537, u32::MAX] {
                for flags in [0, 1, 2, 4, 7, u64::MAX] {
                    let c = Case {
                        vm_fd,
                        profile: Profile::Linux70,
                        op,
                        flags,
                        size,
                        gaddr: u64::MAX - 7,
                        union: [0xFF; 32],
                        buf_valid: true,
                        old_valid: true,
                        keys: Some([0x98; 16]),
                        psw_mask: Psw::DAT | Psw::EA | Psw::BA,
                        cr0: 0xE0,
                        prefix: 0,
                        protected: false,
                        ars: [0, 0],
                    };
                    run_case(&c).unwrap();
                }
            }
        }
    }
}
