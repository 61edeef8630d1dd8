//! Shared fixture of the memop tests: the Linux selftest guest environment "E-ST"
//! (selftest-cases.md §1.3) and the helpers of `memop.c` (`prepare_mem12`,
//! `default_write_read`, `CHECK_N_DO`, guest copy, guest SSKE).
//!
//! Included by the `memop_*` test crates with `#[path = "memop_support.rs"] mod
//! support;`; as a crate of its own it has no tests.
#![allow(dead_code)]

use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::dat::builder::{LeafFlags, SpaceBuilder};
use s390_gaccess::dat::{DesignationType, FrameSize};
use s390_gaccess::exception::AccessMode;
use s390_gaccess::keys::{AccessKey, StorageKey};
use s390_gaccess::memop::{MemOp, MemOpResult, Profile};
use s390_gaccess::translate::translate_address_with_key;
use s390_gaccess::vcpu::{Psw, Vcpu};
use s390_gaccess::vm::Vm;

/// Guest memory size.
pub const MEMORY: u64 = 8 << 20;
/// Where the DAT tables are built.
pub const TABLES: u64 = 0x10_0000;
/// `mem1`: 16 pages, GVA ≠ GPA.
pub const MEM1_GVA: u64 = 0x4000_0000;
/// Absolute address of `mem1` (contiguous).
pub const MEM1_GPA: u64 = 0x20_0000;
/// `mem2`: the 16 pages after `mem1` in both spaces.
pub const MEM2_GVA: u64 = 0x4001_0000;
/// Absolute address of `mem2`.
pub const MEM2_GPA: u64 = 0x21_0000;
/// `t.size`: `min(KVM_CAP_S390_MEM_OP, 65536)`.
pub const SIZE: u32 = 65536;
/// The page mapped at GVA 0 (selftest-cases.md §2.8).
pub const PAGE0_GPA: u64 = 0x30_0000;
/// The last page of the 64-bit address space.
pub const LAST_PAGE_GVA: u64 = 0xFFFF_FFFF_FFFF_F000;
/// The page mapped at [`LAST_PAGE_GVA`].
pub const LAST_PAGE_GPA: u64 = 0x30_1000;
/// The selftest's PSW mask: DAT on, key 0, primary space, 64-bit.
pub const PSW_MASK: u64 = 0x0400_0001_8000_0000;
/// CR0 after the selftest's setup: reset value 0xE0 plus AFP.
pub const CR0: u64 = 0xE0 | 0x40000;
/// CR0 fetch-protection override.
pub const CR0_FPO: u64 = 0x0200_0000;
/// CR0 storage-protection override.
pub const CR0_SPO: u64 = 0x0100_0000;
/// Every ksmo's union before `ar`/`key` are set (selftest-cases.md §1.3).
pub const IGNORED: [u8; 32] = *b"ignored_ignored_ignored_ignored\0";

/// The selftest guest: one vCPU, the VM, the profile every op runs with.
pub struct Env {
    pub vm: Vm,
    pub vcpu: Vcpu,
    pub profile: Profile,
}

impl Env {
    /// E-ST: region-first ASCE (TL 3), mem1 and mem2 mapped with 4 KiB pages, prefix 0,
    /// CR0 = 0xE0 | AFP, keys not in use.
    pub fn new(profile: Profile) -> Self {
        Self::build(profile, false)
    }

    /// E-ST plus one page at GVA 0 and one at GVA 0xFFFFFFFFFFFFF000 (§2.8).
    pub fn with_low_and_last_page(profile: Profile) -> Self {
        Self::build(profile, true)
    }

    fn build(profile: Profile, extra_pages: bool) -> Self {
        let vm = Vm::with_memory(MEMORY).expect("guest memory");
        let mut b = SpaceBuilder::new(vm.storage(), DesignationType::RegionFirst, TABLES, 3, 0)
            .expect("region-first table");
        let flags = LeafFlags::default();
        b.map(
            MEM1_GVA,
            MEM1_GPA,
            2 * SIZE as u64,
            FrameSize::Size4K,
            flags,
        )
        .expect("mem1/mem2");
        if extra_pages {
            b.map(0, PAGE0_GPA, 4096, FrameSize::Size4K, flags)
                .expect("GVA 0");
            b.map(LAST_PAGE_GVA, LAST_PAGE_GPA, 4096, FrameSize::Size4K, flags)
                .expect("last page");
        }
        let mut vcpu = Vcpu::new();
        vcpu.psw = Psw {
            mask: PSW_MASK,
            addr: 0x1000,
        };
        vcpu.cr[0] = CR0;
        vcpu.cr[1] = b.asce().0;
        Self { vm, vcpu, profile }
    }

    /// The absolute address behind a guest virtual address (the selftest's
    /// `addr_gva2gpa`).
    pub fn gpa(&self, gva: u64) -> u64 {
        translate_address_with_key(
            &self.vm,
            &self.vcpu,
            gva,
            0,
            AccessMode::Fetch,
            AccessKey::ZERO,
        )
        .expect("mapped")
        .0
    }

    /// Run a memop on the VM fd with this environment's profile.
    pub fn vm_op(&self, m: MemOp) -> MemOpResult {
        m.profile(self.profile).run_vm(&self.vm)
    }

    /// Run a memop on the vCPU fd with this environment's profile.
    pub fn vcpu_op(&mut self, m: MemOp) -> MemOpResult {
        m.profile(self.profile).run_vcpu(&self.vm, &mut self.vcpu)
    }

    /// `CHECK_N_DO` on the vCPU fd: the op with CHECK_ONLY, then without; both must
    /// return `expect`. Returns the real call's result.
    pub fn vcpu_check_n_do(&mut self, m: MemOp, expect: i32) -> MemOpResult {
        let check = self.vcpu_op(m.clone().check_only());
        assert_eq!(check.ret, expect, "CHECK_ONLY of {:?}", m.as_struct());
        let done = self.vcpu_op(m.clone());
        assert_eq!(done.ret, expect, "{:?}", m.as_struct());
        done
    }

    /// `CHECK_N_DO` on the VM fd.
    pub fn vm_check_n_do(&self, m: MemOp, expect: i32) -> MemOpResult {
        let check = self.vm_op(m.clone().check_only());
        assert_eq!(check.ret, expect, "CHECK_ONLY of {:?}", m.as_struct());
        let done = self.vm_op(m.clone());
        assert_eq!(done.ret, expect, "{:?}", m.as_struct());
        done
    }

    /// The guest's `memcpy(mem2, mem1, 65536)` with PSW key 0.
    pub fn guest_copy(&self) {
        let mut b = vec![0u8; SIZE as usize];
        self.vm
            .storage()
            .read(AbsoluteAddress(MEM1_GPA), &mut b)
            .expect("mem1");
        self.vm
            .storage()
            .write(AbsoluteAddress(MEM2_GPA), &b)
            .expect("mem2");
        for p in 0..16 {
            self.vm
                .storage()
                .mark(AbsoluteAddress(MEM1_GPA + p * 4096), StorageKey::REFERENCE);
            let c = StorageKey::REFERENCE | StorageKey::CHANGE;
            self.vm
                .storage()
                .mark(AbsoluteAddress(MEM2_GPA + p * 4096), c);
        }
    }

    /// The guest's `set_storage_key_range(gva, len, key)`: LRA and SSKE on every page
    /// overlapping the range. The first SSKE puts keys in use.
    pub fn guest_set_keys(&self, gva: u64, len: u64, key: u8) {
        self.vm.enable_keys();
        let first = gva & !0xFFF;
        let pages = (gva + (len - 1) - first) / 4096 + 1;
        for i in 0..pages {
            self.guest_sske(self.gpa(first + i * 4096), key);
        }
    }

    /// SSKE on the frame at real (= absolute, prefix 0) address `abs`.
    pub fn guest_sske(&self, abs: u64, key: u8) {
        self.vm.enable_keys();
        self.vm
            .set_storage_key(AbsoluteAddress(abs), StorageKey(key))
            .expect("frame");
    }

    /// Absolute bytes.
    pub fn read_abs(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.vm
            .storage()
            .read(AbsoluteAddress(gpa), &mut b)
            .expect("in memory");
        b
    }

    /// `guest_copy_key`: keys 0x90 on mem1 and mem2 (selftest-cases.md §2.3).
    pub fn guest_copy_key(&self) {
        self.guest_set_keys(MEM1_GVA, SIZE as u64, 0x90);
        self.guest_set_keys(MEM2_GVA, SIZE as u64, 0x90);
    }

    /// `guest_copy_key_fetch_prot`: keys 0x98 on mem1 and mem2 (§2.7).
    pub fn guest_copy_key_fetch_prot(&self) {
        self.guest_set_keys(MEM1_GVA, SIZE as u64, 0x98);
        self.guest_set_keys(MEM2_GVA, SIZE as u64, 0x98);
    }

    /// `guest_error_key`: mem1 page 0 key 0x18, pages 1..15 key 0x98 (§2.11).
    pub fn guest_error_key(&self) {
        self.guest_set_keys(MEM1_GVA, 4096, 0x18);
        self.guest_set_keys(MEM1_GVA + 4096, SIZE as u64 - 4096, 0x98);
    }
}

/// A selftest ksmo: the union pre-filled with [`IGNORED`], then `ar` = 0 (the `MOP`
/// macro always sets `ar`). Apply `.key(..)` / `.ar(..)` after this.
pub fn mop(m: MemOp) -> MemOp {
    m.reserved(IGNORED).ar(0)
}

/// `KEY(k)` with `NO_KEY` as `None`.
pub fn with_key(m: MemOp, key: Option<u8>) -> MemOp {
    match key {
        Some(k) => m.key(k),
        None => m,
    }
}

/// Deterministic pseudo-random bytes (the selftest uses `rand()`).
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    if x == 0 {
        x = 1;
    }
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_be_bytes());
    }
    out.truncate(len);
    out
}

/// `prepare_mem12`: host mem1 random, host mem2 0xAA.
pub fn prepare_mem12(seed: u64) -> (Vec<u8>, Vec<u8>) {
    (random_bytes(seed, SIZE as usize), vec![0xAA; SIZE as usize])
}

/// Which fd and target a `default_*` helper uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// vcpu LOGICAL at GVA.
    Logical,
    /// vm ABSOLUTE at GPA.
    Absolute,
}

impl Env {
    fn write_op(&self, target: Target, gva: u64, data: &[u8]) -> MemOp {
        match target {
            Target::Logical => mop(MemOp::logical_write(gva, data.to_vec())),
            Target::Absolute => mop(MemOp::absolute_write(self.gpa(gva), data.to_vec())),
        }
    }

    fn read_op(&self, target: Target, gva: u64, size: u32) -> MemOp {
        match target {
            Target::Logical => mop(MemOp::logical_read(gva, size)),
            Target::Absolute => mop(MemOp::absolute_read(self.gpa(gva), size)),
        }
    }

    fn check_n_do(&mut self, target: Target, m: MemOp, expect: i32) -> MemOpResult {
        match target {
            Target::Logical => self.vcpu_check_n_do(m, expect),
            Target::Absolute => self.vm_check_n_do(m, expect),
        }
    }

    /// `default_write_read(target, size, key)`: CHECK_N_DO write of host mem1 to
    /// mem1, guest copy, CHECK_N_DO read of mem2, then mem1 == mem2 over `size` bytes.
    pub fn default_write_read(&mut self, target: Target, size: u32, key: Option<u8>, seed: u64) {
        self.default_rw(target, size, key, key, seed);
    }

    /// `default_read(target, size, key)`: like [`Self::default_write_read`] with the
    /// write without a key.
    pub fn default_read(&mut self, target: Target, size: u32, key: Option<u8>, seed: u64) {
        self.default_rw(target, size, None, key, seed);
    }

    fn default_rw(
        &mut self,
        target: Target,
        size: u32,
        wkey: Option<u8>,
        rkey: Option<u8>,
        seed: u64,
    ) {
        let (mem1, _mem2) = prepare_mem12(seed);
        let w = with_key(
            self.write_op(target, MEM1_GVA, &mem1[..size as usize]),
            wkey,
        );
        self.check_n_do(target, w, 0);
        self.guest_copy();
        let r = with_key(self.read_op(target, MEM2_GVA, size), rkey);
        let got = self.check_n_do(target, r, 0);
        assert_eq!(got.data, mem1[..size as usize], "data read back");
    }
}

/// Both profiles, for tests whose outcome must not depend on the profile.
pub fn profiles() -> [Profile; 2] {
    Profile::ALL
}
