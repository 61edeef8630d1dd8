//! Scale and edges through the raw ioctl entry points (`vm_mem_op`, `vcpu_mem_op` with
//! a `KvmS390MemOp` and `UserMemory`): 16 TiB sparse guests accessed near their end,
//! 64 memslots with holes, adjacent memslots, and addresses and sizes near 2^64,
//! including DAT table-entry addresses that wrap at 2^64 (§11 item 1).
//!
//! Expected values come from kernel-semantics.md: §3.2 (sizes), §5.1 (address wrap by
//! addressing mode), §5.4 (fragments), §5.7 (prefixing), §6.1 (absolute access: u64
//! arithmetic, no pre-check, partial writes), §6.2/§6.4 (CHECK_ONLY per profile), §7
//! (cmpxchg alignment), §10.3 (R/C).

use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::dat::builder::{LeafFlags, SpaceBuilder};
use s390_gaccess::dat::{Asce, DesignationType, FrameSize, TableLevel};
use s390_gaccess::memop::abi::{
    KVM_S390_KEYOP_ISKE, KVM_S390_KEYOP_SSKE, KVM_S390_MEMOP_ABSOLUTE_CMPXCHG,
    KVM_S390_MEMOP_ABSOLUTE_READ, KVM_S390_MEMOP_ABSOLUTE_WRITE, KVM_S390_MEMOP_F_CHECK_ONLY,
    KVM_S390_MEMOP_F_SKEY_PROTECTION, KVM_S390_MEMOP_LOGICAL_READ, KVM_S390_MEMOP_LOGICAL_WRITE,
    KvmS390Keyop, KvmS390MemOp, KvmS390Skeys,
};
use s390_gaccess::memop::{
    Profile, UserBuffer, UserMemory, get_skeys, keyop, set_skeys, vcpu_mem_op, vm_mem_op,
};
use s390_gaccess::vcpu::{Psw, Vcpu};
use s390_gaccess::vm::{Facilities, Vm};

const PAGE: u64 = 4096;
const TIB16: u64 = 16 << 40;
const EINVAL: i32 = -22;
const E2BIG: i32 = -7;
const CHECK: u64 = KVM_S390_MEMOP_F_CHECK_ONLY;
const SKEY: u64 = KVM_S390_MEMOP_F_SKEY_PROTECTION;

fn mop(op: u32, gaddr: u64, size: u32, flags: u64, key: u8) -> KvmS390MemOp {
    let mut m = KvmS390MemOp::new(op, gaddr, size);
    m.set_flags(flags);
    m.set_key(key);
    m
}

/// A VM-fd memop with `buf` as the user buffer; returns the ioctl value.
fn vm_op(vm: &Vm, profile: Profile, m: &KvmS390MemOp, buf: &mut [u8]) -> i32 {
    vm_mem_op(vm, profile, m, &mut UserMemory::new(buf))
}

/// A vCPU-fd memop with `buf` as the user buffer.
fn vcpu_op(vm: &Vm, vcpu: &mut Vcpu, m: &KvmS390MemOp, buf: &mut [u8]) -> i32 {
    vcpu_mem_op(vm, vcpu, Profile::Linux70, m, &mut UserMemory::new(buf))
}

fn read(vm: &Vm, at: u64, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    vm.storage()
        .read(AbsoluteAddress(at), &mut b)
        .expect("in memory");
    b
}

fn cpu(mask: u64) -> Vcpu {
    let mut v = Vcpu::new();
    v.psw = Psw { mask, addr: 0 };
    v
}

const AMODE64: u64 = Psw::EA | Psw::BA;

/// §6.1 at the end of a 16 TiB guest: in-memory accesses work, an access running past
/// the end writes its in-memory fragments and then fails with 5 (no pre-check).
#[test]
fn sixteen_tib_guest_near_its_end() {
    let vm = Vm::with_memory(TIB16).expect("a 16 TiB guest is address space only");
    let end = TIB16;
    let p = Profile::Linux70;
    let mut data: Vec<u8> = (1..=16).collect();
    assert_eq!(
        vm_op(
            &vm,
            p,
            &mop(KVM_S390_MEMOP_ABSOLUTE_WRITE, end - 8, 8, 0, 0),
            &mut data
        ),
        0
    );
    assert_eq!(read(&vm, end - 8, 8), (1..=8).collect::<Vec<u8>>());
    let k = vm
        .storage_key(AbsoluteAddress(end - 1))
        .expect("last frame");
    assert!(k.referenced() && k.changed(), "§10.3: {k:?}");
    // Past the end: the first fragment (page) is written, then PGM 5.
    let mut buf = vec![0xEE; 8];
    let w = mop(KVM_S390_MEMOP_ABSOLUTE_WRITE, end - 4, 8, 0, 0);
    assert_eq!(vm_op(&vm, p, &w, &mut buf), 5);
    assert_eq!(read(&vm, end - 4, 4), vec![0xEE; 4], "§6.1: no pre-check");
    // CHECK_ONLY across the end: 5 in linux-7.0; linux-6.3 with key 0 checks only the
    // first byte (§6.3, §6.4 row 2).
    let c = mop(KVM_S390_MEMOP_ABSOLUTE_READ, end - 4, 8, CHECK, 0);
    assert_eq!(vm_op(&vm, Profile::Linux70, &c, &mut []), 5);
    assert_eq!(vm_op(&vm, Profile::Linux63, &c, &mut []), 0);
    // A read across the end fails without copying to the user.
    let mut r = vec![0x55u8; 8];
    let rd = mop(KVM_S390_MEMOP_ABSOLUTE_READ, end - 4, 8, 0, 0);
    assert_eq!(vm_op(&vm, p, &rd, &mut r), 5);
    assert_eq!(r, vec![0x55; 8]);
    // cmpxchg on the last quadword.
    let mut new = [7u8; 16];
    let mut old = read(&vm, end - 16, 16);
    let before = old.clone();
    let x = mop(KVM_S390_MEMOP_ABSOLUTE_CMPXCHG, end - 16, 16, 0, 0);
    let ret = vm_mem_op(&vm, p, &x, &mut UserMemory::cmpxchg(&mut new, &mut old));
    assert_eq!((ret, old), (0, before), "exchanged: old unchanged (§7)");
    assert_eq!(read(&vm, end - 16, 16), vec![7; 16]);
    // A key on the last frame through KEYOP (which does not put keys in use), then
    // keyed accesses: key 3 = ACC passes, key 2 fails a store (§8.3 basic rule).
    let mut kop = KvmS390Keyop::new(KVM_S390_KEYOP_SSKE, end - 1, 0x30);
    assert_eq!(keyop(&vm, &mut kop), 0);
    let mut b = [1u8; 8];
    assert_eq!(
        vm_op(
            &vm,
            p,
            &mop(KVM_S390_MEMOP_ABSOLUTE_WRITE, end - 8, 8, SKEY, 3),
            &mut b
        ),
        0
    );
    assert_eq!(
        vm_op(
            &vm,
            p,
            &mop(KVM_S390_MEMOP_ABSOLUTE_WRITE, end - 8, 8, SKEY, 2),
            &mut b
        ),
        4
    );
    assert_eq!(
        vm_op(
            &vm,
            p,
            &mop(KVM_S390_MEMOP_ABSOLUTE_READ, end - 8, 8, SKEY, 2),
            &mut b
        ),
        0
    );
    // DAT off: a logical read at real address end - 8 (prefix 0 does not apply there).
    let mut v = cpu(AMODE64);
    let mut got = [0u8; 8];
    assert_eq!(
        vcpu_op(
            &vm,
            &mut v,
            &mop(KVM_S390_MEMOP_LOGICAL_READ, end - 8, 8, 0, 0),
            &mut got
        ),
        0
    );
    assert_eq!(got, [1u8; 8]);
    // Frames far apart stay independent and cheap.
    for a in [1u64 << 40, 5 << 40, (15 << 40) + 0x1234_5000] {
        let mut d = a.to_be_bytes();
        assert_eq!(
            vm_op(
                &vm,
                p,
                &mop(KVM_S390_MEMOP_ABSOLUTE_WRITE, a, 8, 0, 0),
                &mut d
            ),
            0
        );
        assert_eq!(read(&vm, a, 8), a.to_be_bytes());
    }
}

/// DAT in a 16 TiB guest: tables at the top of memory, the last virtual page mapped to
/// the last frame, virtual 0 to the one before; a read across 2^64 wraps (§5.4).
#[test]
fn sixteen_tib_guest_with_tables_at_the_top() {
    let vm = Vm::with_memory(TIB16).expect("16 TiB");
    let tables = TIB16 - 0x10_0000;
    let mut b = SpaceBuilder::new(vm.storage(), DesignationType::RegionFirst, tables, 3, 0)
        .expect("tables at the top");
    let last = !0xFFFu64;
    b.map(
        last,
        TIB16 - PAGE,
        PAGE,
        FrameSize::Size4K,
        LeafFlags::default(),
    )
    .expect("last page");
    b.map(
        0,
        TIB16 - 2 * PAGE,
        PAGE,
        FrameSize::Size4K,
        LeafFlags::default(),
    )
    .expect("page 0");
    vm.storage()
        .write(AbsoluteAddress(TIB16 - 8), &[0xA1; 8])
        .expect("end");
    vm.storage()
        .write(AbsoluteAddress(TIB16 - 2 * PAGE), &[0xB2; 8])
        .expect("page 0 frame");
    let mut v = cpu(Psw::DAT | AMODE64);
    v.cr[1] = b.asce().0;
    let mut got = [0u8; 16];
    let r = vcpu_op(
        &vm,
        &mut v,
        &mop(KVM_S390_MEMOP_LOGICAL_READ, u64::MAX - 7, 16, 0, 0),
        &mut got,
    );
    assert_eq!(r, 0);
    assert_eq!(got[..8], [0xA1; 8]);
    assert_eq!(got[8..], [0xB2; 8]);
    // Every table frame read got R (§10.3).
    for level in TableLevel::ALL {
        let e = b.entry_address(last, level).expect("entry");
        assert!(
            vm.storage_key(e).expect("table frame").referenced(),
            "{level:?}"
        );
    }
    // A store across the wrap with page 0 DAT-protected: nothing stored (§5.8: all
    // pages are translated first), PGM 4 with the TEID of page 0's address.
    b.edit(0, TableLevel::Page, 0x200, 0)
        .expect("protect page 0");
    let mut data = [0x77u8; 16];
    let w = mop(KVM_S390_MEMOP_LOGICAL_WRITE, u64::MAX - 7, 16, 0, 0);
    assert_eq!(vcpu_op(&vm, &mut v, &w, &mut data), 4);
    assert_eq!(
        v.pgm.teid.0 & !0xFFF,
        0,
        "TEID address: the failing fragment (page 0)"
    );
    assert_eq!(v.pgm.teid.0 & 0x8C, 0x04, "DAT protection (§9.3)");
    assert_eq!(read(&vm, TIB16 - 8, 8), vec![0xA1; 8], "nothing stored");
}

/// Putting keys in use on a 16 TiB guest resets every key (§10.1), including one set
/// at the guest's last frame (the reset visits the key pages written, not all 4 Gi
/// key bytes: `GuestStorage::reset_keys`).
#[test]
fn sixteen_tib_guest_keys_in_use() {
    let vm = Vm::with_memory(TIB16).expect("16 TiB");
    let mut kop = KvmS390Keyop::new(KVM_S390_KEYOP_SSKE, TIB16 - 1, 0x96);
    assert_eq!(keyop(&vm, &mut kop), 0);
    let t = std::time::Instant::now();
    let mut k = [0x30u8];
    let args = KvmS390Skeys::new(TIB16 / PAGE - 1, 1);
    assert_eq!(set_skeys(&vm, &args, &UserBuffer::valid(&mut k)), 0);
    eprintln!("SET_SKEYS putting keys in use on 16 TiB: {:?}", t.elapsed());
    let mut out = [0u8; 2];
    let args = KvmS390Skeys::new(TIB16 / PAGE - 2, 2);
    assert_eq!(get_skeys(&vm, &args, &mut UserBuffer::valid(&mut out)), 0);
    assert_eq!(out, [0x00, 0x30], "the reset cleared the earlier SSKE key");
}

/// 64 memslots with holes (and one pair of touching slots): every boundary through
/// absolute reads, writes and CHECK_ONLY of the raw ioctl, against a plain list of
/// the slots and the §6.1 rule (fragments in order, each needs memory, earlier ones
/// stay written).
#[test]
fn sixty_four_memslots_with_holes() {
    let mut slots: Vec<(u64, u64)> = (0..63u64)
        .map(|i| (i * 0x2_0000 + (i % 3) * PAGE, PAGE * (1 + i % 5)))
        .collect();
    // Slot 63 touches slot 62's end: no hole between them.
    let (s62, z62) = slots[62];
    slots.push((s62 + z62, 2 * PAGE));
    let vm = Vm::new(&slots, Facilities::default_set()).expect("64 memslots");
    assert_eq!(vm.storage().memslots().count(), 64);
    let in_mem = |a: u64| slots.iter().any(|&(s, z)| a >= s && a - s < z);
    let p = Profile::Linux70;
    let mut n = 0;
    for &(s, z) in &slots {
        for (at, size) in [
            (s.wrapping_sub(1), 2u32),
            (s, 1),
            (s + z - 2, 4),
            (s + z - PAGE / 2, PAGE as u32),
            (s + z - 1, 1),
            (s + z, 1),
            (s.wrapping_sub(PAGE), 3 * PAGE as u32),
        ] {
            n += 1;
            // The reference: the first fragment not in memory (if any).
            let mut expect = 0;
            let mut stored = Vec::new();
            let (mut a, mut left) = (at, size as u64);
            while left > 0 {
                let frag = (PAGE - (a & 0xFFF)).min(left);
                if !in_mem(a) {
                    expect = 5;
                    break;
                }
                stored.push((a, frag));
                a = a.wrapping_add(frag);
                left -= frag;
            }
            let fill = n as u8;
            let mut data = vec![fill; size as usize];
            let w = mop(KVM_S390_MEMOP_ABSOLUTE_WRITE, at, size, 0, 0);
            assert_eq!(
                vm_op(&vm, p, &w, &mut data),
                expect,
                "write {at:#x}+{size:#x}"
            );
            for &(a, f) in &stored {
                assert_eq!(read(&vm, a, f as usize), vec![fill; f as usize], "{a:#x}");
            }
            let c = mop(KVM_S390_MEMOP_ABSOLUTE_READ, at, size, CHECK, 0);
            assert_eq!(vm_op(&vm, p, &c, &mut []), expect, "check {at:#x}");
            // linux-6.3: only the first byte is checked with key 0 (§6.3).
            let pre = if in_mem(at) { 0 } else { 5 };
            assert_eq!(
                vm_op(&vm, Profile::Linux63, &c, &mut []),
                pre,
                "6.3 check {at:#x}"
            );
            let mut r = vec![0u8; size as usize];
            let rd = mop(KVM_S390_MEMOP_ABSOLUTE_READ, at, size, 0, 0);
            assert_eq!(vm_op(&vm, p, &rd, &mut r), expect, "read {at:#x}");
            if expect == 0 {
                assert_eq!(r, vec![fill; size as usize]);
            }
        }
    }
    // Across the touching pair: one access, two memslots.
    let mut d = vec![0x5Au8; 2 * PAGE as usize];
    let w = mop(
        KVM_S390_MEMOP_ABSOLUTE_WRITE,
        s62 + z62 - PAGE,
        2 * PAGE as u32,
        0,
        0,
    );
    assert_eq!(vm_op(&vm, p, &w, &mut d), 0);
    // DAT off: logical accesses see the same layout (prefix 0 matters below 8 KiB).
    let mut v = cpu(AMODE64);
    for &(s, z) in &slots[10..20] {
        let mut b = [0u8; 2];
        let r = vcpu_op(
            &vm,
            &mut v,
            &mop(KVM_S390_MEMOP_LOGICAL_READ, s + z - 1, 2, 0, 0),
            &mut b,
        );
        assert_eq!(
            r,
            if in_mem(s + z) { 0 } else { 5 },
            "logical {:#x}",
            s + z - 1
        );
    }
    // Keys by frame number across the slots: GET_SKEYS over a hole faults.
    let mut k = [0x20u8; 1];
    let (s5, _) = slots[5];
    assert_eq!(
        set_skeys(
            &vm,
            &KvmS390Skeys::new(s5 / PAGE, 1),
            &UserBuffer::valid(&mut k)
        ),
        0
    );
    let mut out = vec![0u8; 3];
    let (s4, z4) = slots[4];
    let args = KvmS390Skeys::new((s4 + z4) / PAGE - 1, 3);
    assert_eq!(get_skeys(&vm, &args, &mut UserBuffer::valid(&mut out)), -14);
}

/// Addresses and sizes near 2^64 through the raw ioctl.
#[test]
fn addresses_and_sizes_near_2_pow_64() {
    let top = 0u64.wrapping_sub(0x1_0000);
    let slots = [
        (0, 0x1_0000),
        (0xFF_0000, 0x1_0000),
        (0x7FFF_0000, 0x1_0000),
        (top, 0x1_0000),
    ];
    let vm = Vm::new(&slots, Facilities::default_set()).expect("slots");
    let p = Profile::Linux70;
    vm.storage()
        .write(AbsoluteAddress(u64::MAX - 7), &[0xEE; 8])
        .expect("top");
    vm.storage()
        .write(AbsoluteAddress(0), &[0x11; 8])
        .expect("zero");
    // Absolute: u64 arithmetic wraps at 2^64 (§6.1).
    let mut r = [0u8; 16];
    assert_eq!(
        vm_op(
            &vm,
            p,
            &mop(KVM_S390_MEMOP_ABSOLUTE_READ, u64::MAX - 7, 16, 0, 0),
            &mut r
        ),
        0
    );
    assert_eq!(r[..8], [0xEE; 8]);
    assert_eq!(r[8..], [0x11; 8]);
    let mut big = vec![0x3Cu8; 65536];
    let w = mop(
        KVM_S390_MEMOP_ABSOLUTE_WRITE,
        0u64.wrapping_sub(0x8000),
        65536,
        0,
        0,
    );
    assert_eq!(vm_op(&vm, p, &w, &mut big), 0, "64 KiB across 2^64");
    assert_eq!(read(&vm, 0x7FF8, 8), vec![0x3C; 8]);
    // Sizes (§3.2): 65536 is the largest, 0 invalid, anything larger E2BIG.
    let mut b = vec![0u8; 65537];
    for (size, expect) in [
        (0u32, EINVAL),
        (65537, E2BIG),
        (u32::MAX, E2BIG),
        (65536, 0),
    ] {
        let m = mop(KVM_S390_MEMOP_ABSOLUTE_READ, 0, size, 0, 0);
        assert_eq!(vm_op(&vm, p, &m, &mut b), expect, "size {size:#x}");
        let mut v = cpu(AMODE64);
        let m = mop(KVM_S390_MEMOP_LOGICAL_READ, u64::MAX, size, 0, 0);
        let want = if size == 65536 { 0 } else { expect };
        assert_eq!(
            vcpu_op(&vm, &mut v, &m, &mut b),
            want,
            "logical size {size:#x}"
        );
    }
    // cmpxchg: the last quadword; misaligned by 8 is -EINVAL (§7 step 1).
    let mut new = [9u8; 16];
    let mut old = read(&vm, u64::MAX - 15, 16);
    let x = mop(KVM_S390_MEMOP_ABSOLUTE_CMPXCHG, u64::MAX - 15, 16, 0, 0);
    assert_eq!(
        vm_mem_op(&vm, p, &x, &mut UserMemory::cmpxchg(&mut new, &mut old)),
        0
    );
    let x = mop(KVM_S390_MEMOP_ABSOLUTE_CMPXCHG, u64::MAX - 7, 16, 0, 0);
    assert_eq!(
        vm_mem_op(&vm, p, &x, &mut UserMemory::cmpxchg(&mut new, &mut old)),
        EINVAL
    );
    // A hole just below the top slot.
    let mut d = [0u8; 2];
    assert_eq!(
        vm_op(
            &vm,
            p,
            &mop(KVM_S390_MEMOP_ABSOLUTE_READ, top - 1, 2, 0, 0),
            &mut d
        ),
        5
    );
    vm.storage()
        .write(AbsoluteAddress(u64::MAX - 7), &[0xEE; 8])
        .expect("top");
    // Logical, DAT off (§5.1, §5.4, §5.7): 64-bit wraps at 2^64 into the prefix area,
    // 31-bit at 2^31 (high bits ignored), 24-bit at 2^24.
    let mut v = cpu(AMODE64);
    v.prefix = 0x2000; // real 0..0x1FFF is absolute 0x2000..0x3FFF
    vm.storage()
        .write(AbsoluteAddress(0x2000), &[0x22; 8])
        .expect("prefix page");
    let mut got = [0u8; 16];
    let m = mop(KVM_S390_MEMOP_LOGICAL_READ, u64::MAX - 7, 16, 0, 0);
    assert_eq!(vcpu_op(&vm, &mut v, &m, &mut got), 0);
    assert_eq!(
        (got[..8].to_vec(), got[8..].to_vec()),
        (vec![0xEE; 8], vec![0x22; 8])
    );
    vm.storage()
        .write(AbsoluteAddress(0x7FFF_FFF8), &[0x31; 8])
        .expect("2G");
    let mut v31 = cpu(Psw::BA);
    v31.prefix = 0x2000;
    let m = mop(KVM_S390_MEMOP_LOGICAL_READ, 0xFFFF_FFFF_7FFF_FFF8, 16, 0, 0);
    assert_eq!(vcpu_op(&vm, &mut v31, &m, &mut got), 0);
    assert_eq!(
        (got[..8].to_vec(), got[8..].to_vec()),
        (vec![0x31; 8], vec![0x22; 8])
    );
    vm.storage()
        .write(AbsoluteAddress(0xFF_FFF8), &[0x24; 8])
        .expect("16M");
    let mut v24 = cpu(0);
    v24.prefix = 0x2000;
    let m = mop(KVM_S390_MEMOP_LOGICAL_READ, 0x1234_5678_FFFF_FFF8, 16, 0, 0);
    assert_eq!(vcpu_op(&vm, &mut v24, &m, &mut got), 0);
    assert_eq!(
        (got[..8].to_vec(), got[8..].to_vec()),
        (vec![0x24; 8], vec![0x22; 8])
    );
    // Storage-key ioctls at the top: the last frame exists, the one after it has no
    // 64-bit address (-EFAULT, after the first key was set).
    let last_gfn = u64::MAX / PAGE;
    let mut k = [0x40u8, 0x40];
    assert_eq!(
        set_skeys(
            &vm,
            &KvmS390Skeys::new(last_gfn, 2),
            &UserBuffer::valid(&mut k)
        ),
        -14
    );
    let mut kop = KvmS390Keyop::new(KVM_S390_KEYOP_ISKE, u64::MAX, 0);
    assert_eq!(keyop(&vm, &mut kop), 0);
    assert_eq!(kop.key, 0x40);
    let mut out = [0u8; 1];
    assert_eq!(
        get_skeys(
            &vm,
            &KvmS390Skeys::new(last_gfn, 1),
            &mut UserBuffer::valid(&mut out)
        ),
        0
    );
    assert_eq!(out, [0x40]);
}

/// §11 item 1: a table-entry address is `origin + index * 8` in u64 arithmetic, so a
/// region-first table at the top of the address space wraps into low memory.
#[test]
fn table_entry_addresses_wrap_at_2_pow_64() {
    let top = 0u64.wrapping_sub(0x1_0000);
    let vm = Vm::new(
        &[(0, 0x10_0000), (top, 0x1_0000)],
        Facilities::default_set(),
    )
    .expect("slots");
    // A region-second space built low, whose table the wrapped RFTE points to.
    let mut b = SpaceBuilder::new(vm.storage(), DesignationType::RegionSecond, 0x1_0000, 3, 0)
        .expect("region-second");
    let rfx: u64 = 600; // origin + 600 * 8 = 2^64 - 0x1000 + 0x12C0 = 0x2C0
    let rs_part = 0x0000_0040_0012_3000u64; // RSX, RTX, SX, PX below RFX
    let virt = (rfx << 53) | rs_part;
    b.map(
        rs_part,
        0x8_0000,
        PAGE,
        FrameSize::Size4K,
        LeafFlags::default(),
    )
    .expect("map");
    let origin = !0xFFFu64;
    let entry = origin.wrapping_add(rfx * 8);
    assert_eq!(entry, 0x2C0, "origin + index * 8 wraps (§11 item 1)");
    let rfte = b.asce().origin() | (3 << 2) | 3; // RTO, TT = region-first, TL 3
    vm.storage()
        .write_u64(AbsoluteAddress(entry), rfte)
        .expect("rfte");
    vm.storage()
        .write(AbsoluteAddress(0x8_0123), &[0x5E])
        .expect("frame");
    let mut v = cpu(Psw::DAT | AMODE64);
    v.cr[1] = Asce::new(origin, DesignationType::RegionFirst, 3, 0).0;
    let mut got = [0u8; 1];
    let m = mop(KVM_S390_MEMOP_LOGICAL_READ, virt | 0x123, 1, 0, 0);
    assert_eq!(vcpu_op(&vm, &mut v, &m, &mut got), 0);
    assert_eq!(got, [0x5E]);
    assert!(
        vm.storage_key(AbsoluteAddress(entry))
            .expect("low frame")
            .referenced(),
        "R on the frame of the wrapped entry (§10.3)"
    );
    assert!(
        !vm.storage_key(AbsoluteAddress(origin))
            .expect("top")
            .referenced()
    );
}
