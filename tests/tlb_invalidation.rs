//! Every input of a cached walk, changed one at a time (§5.6 last note, §11 item 2:
//! KVM has no TLB, so the translation cache must never show).
//!
//! Each test runs the same steps on a vCPU with the cache and one without, on two
//! identical guests, and after every step compares the outcome, guest memory, every
//! storage key (R included, §10.3) and the vCPU. Each test also checks that the step
//! really changed the uncached outcome, so a cache that missed the change would fail.
use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::dat::builder::{LeafFlags, SpaceBuilder, entry_address};
use s390_gaccess::dat::{Asce, DesignationType, FrameSize, TableLevel};
use s390_gaccess::exception::{AccessError, AccessMode};
use s390_gaccess::keys::{AccessKey, StorageKey};
use s390_gaccess::memop::abi::{KVM_S390_KEYOP_RRBE, KVM_S390_KEYOP_SSKE, KvmS390Keyop};
use s390_gaccess::memop::{MemOp, deliver_pending, keyop};
use s390_gaccess::translate::translate_address_with_key;
use s390_gaccess::vcpu::{Psw, Vcpu, cr0};
use s390_gaccess::vm::{Facilities, Vm};

const MEM: u64 = 8 << 20;
const TABLES: u64 = 0x10_0000;
/// 4 KiB pages -> 0x40_0000.
const V4: u64 = (1 << 53) | (2 << 42) | (3 << 31) | (4 << 20);
/// A 1 MiB frame -> 0x50_0000.
const V1: u64 = (1 << 53) | (2 << 42) | (3 << 31) | (5 << 20);
/// The table area, 4 KiB pages -> 0x10_0000.
const VT: u64 = (1 << 53) | (2 << 42) | (3 << 31) | (6 << 20);
/// Segment index 21: its segment-table entry is at offset 168 of the segment table,
/// where a delivery stores the TEID when the prefix points at that table.
const V21: u64 = (1 << 53) | (2 << 42) | (3 << 31) | (21 << 20);

struct Machine {
    vm: Vm,
    vcpu: Vcpu,
}

/// The guest: a region-first space, CR1 = CR7 = its ASCE, DAT on, CR0 with EDAT.
fn machine(facilities: &[u32], cached: bool) -> Machine {
    let vm = Vm::new(&[(0, MEM)], Facilities::from_numbers(facilities)).unwrap();
    let asce = {
        let mut b =
            SpaceBuilder::new(vm.storage(), DesignationType::RegionFirst, TABLES, 3, 0).unwrap();
        let f = LeafFlags::default();
        b.map(V4, 0x40_0000, 4 * 4096, FrameSize::Size4K, f)
            .unwrap();
        b.map(V1, 0x50_0000, 1 << 20, FrameSize::Size1M, f).unwrap();
        b.map(VT, TABLES, 32 * 4096, FrameSize::Size4K, f).unwrap();
        b.map(V21, 0x40_0000, 4096, FrameSize::Size4K, f).unwrap();
        assert!(b.end() <= TABLES + 32 * 4096);
        b.asce()
    };
    let mut vcpu = Vcpu::new();
    vcpu.psw.mask |= Psw::DAT;
    vcpu.cr[0] |= cr0::EDAT;
    vcpu.cr[1] = asce.0;
    vcpu.cr[7] = asce.0;
    vcpu.tlb.set_enabled(cached);
    Machine { vm, vcpu }
}

/// A cached and an uncached machine driven in lockstep.
struct Pair {
    m: [Machine; 2],
}

type Outcome = Result<AbsoluteAddress, AccessError>;

impl Pair {
    fn new(facilities: &[u32]) -> Self {
        Self {
            m: [machine(facilities, true), machine(facilities, false)],
        }
    }

    /// Apply `f` to both machines; the outcomes, memory, keys and vCPUs must agree.
    fn step<T: PartialEq + core::fmt::Debug>(&mut self, f: impl Fn(&mut Machine) -> T) -> T {
        let [a, b] = &mut self.m;
        let ra = f(a);
        let rb = f(b);
        assert_eq!(ra, rb, "outcomes");
        assert_eq!(a.vcpu, b.vcpu, "vCPUs");
        let mut x = vec![0u8; MEM as usize];
        let mut y = vec![0u8; MEM as usize];
        a.vm.storage().read(AbsoluteAddress(0), &mut x).unwrap();
        b.vm.storage().read(AbsoluteAddress(0), &mut y).unwrap();
        assert!(x == y, "memory");
        for f in (0..MEM).step_by(4096) {
            let fa = AbsoluteAddress(f);
            assert_eq!(a.vm.storage_key(fa), b.vm.storage_key(fa), "key {f:#x}");
        }
        ra
    }

    fn translate(&mut self, va: u64, mode: AccessMode) -> Outcome {
        self.step(|m| translate_address_with_key(&m.vm, &m.vcpu, va, 0, mode, AccessKey::ZERO))
    }

    /// Translate twice (the second is a cache hit on the cached machine).
    fn translate2(&mut self, va: u64, mode: AccessMode) -> Outcome {
        let r = self.translate(va, mode);
        assert_eq!(self.translate(va, mode), r);
        r
    }

    fn entry(&self, va: u64, level: TableLevel) -> AbsoluteAddress {
        let m = &self.m[0];
        entry_address(m.vm.storage(), Asce(m.vcpu.cr[1]), va, level).unwrap()
    }

    fn read_entry(&self, a: AbsoluteAddress) -> u64 {
        self.m[0].vm.storage().read_u64(a).unwrap()
    }
}

use AccessMode::{Fetch, InstructionFetch, Store};

fn frame(r: Outcome) -> u64 {
    r.unwrap().0 & !0xFFF
}

#[test]
fn plain_storage_write_of_an_entry() {
    let mut p = Pair::new(&[8, 78]);
    assert_eq!(frame(p.translate2(V4, Fetch)), 0x40_0000);
    let pte = p.entry(V4, TableLevel::Page);
    p.step(|m| m.vm.storage().write_u64(pte, 0x40_3000))
        .unwrap();
    assert_eq!(frame(p.translate2(V4, Fetch)), 0x40_3000);
}

#[test]
fn single_byte_write_into_an_upper_level_entry() {
    let mut p = Pair::new(&[8, 78]);
    p.translate2(V4, Fetch).unwrap();
    // Set the invalid bit of the region-second-table entry (last byte of the entry).
    let rste = p.entry(V4, TableLevel::RegionSecond);
    let last = p.read_entry(rste) as u8;
    p.step(|m| {
        m.vm.storage()
            .write(AbsoluteAddress(rste.0 + 7), &[last | 0x20])
    })
    .unwrap();
    assert!(p.translate2(V4, Fetch).is_err());
}

#[test]
fn absolute_memop_write_and_cmpxchg() {
    let mut p = Pair::new(&[8, 78]);
    p.translate2(V4, Fetch).unwrap();
    let pte = p.entry(V4, TableLevel::Page);
    p.step(|m| {
        MemOp::absolute_write(pte.0, 0x40_2000u64.to_be_bytes().to_vec())
            .run_vm(&m.vm)
            .ret
    });
    assert_eq!(frame(p.translate2(V4, Fetch)), 0x40_2000);
    let old = 0x40_2000u64.to_be_bytes().to_vec();
    let new = 0x40_1000u64.to_be_bytes().to_vec();
    p.step(|m| {
        MemOp::absolute_cmpxchg(pte.0, new.clone(), old.clone())
            .run_vm(&m.vm)
            .exchanged
    });
    assert_eq!(frame(p.translate2(V4, Fetch)), 0x40_1000);
}

#[test]
fn logical_memop_rewrites_the_tables_it_translates_through() {
    let mut p = Pair::new(&[8, 78]);
    p.translate2(V4, Fetch).unwrap();
    let pte = p.entry(V4, TableLevel::Page);
    let va = VT + (pte.0 - TABLES);
    // The write itself translates VT through tables it does not change, then stores.
    p.step(|m| {
        MemOp::logical_write(va, 0x40_3000u64.to_be_bytes().to_vec())
            .run_vcpu(&m.vm, &mut m.vcpu)
            .ret
    });
    assert_eq!(frame(p.translate2(V4, Fetch)), 0x40_3000);
    // Invalidate the page-table entry that maps the table area's own first page
    // through a write via that very mapping.
    let own = p.entry(VT, TableLevel::Page);
    let v = p.read_entry(own) | 0x400;
    p.step(|m| {
        MemOp::logical_write(VT + (own.0 - TABLES), v.to_be_bytes().to_vec())
            .run_vcpu(&m.vm, &mut m.vcpu)
            .ret
    });
    assert!(p.translate2(VT, Fetch).is_err());
}

#[test]
fn delivery_into_a_lowcore_holding_tables() {
    let mut p = Pair::new(&[8, 78]);
    // The prefix area is the segment table: the TEID stored at prefix+168 by the
    // delivery replaces the segment-table entry of V21.
    let ste = p.entry(V21, TableLevel::Segment);
    assert_eq!(ste.0 & 0x1FFF, 168);
    for m in &mut p.m {
        m.vcpu.prefix = (ste.0 & !0x1FFF) as u32;
    }
    assert_eq!(frame(p.translate2(V21, Fetch)), 0x40_0000);
    let before = p.read_entry(ste);
    p.step(|m| {
        MemOp::logical_read(V4 + 0x8000, 8)
            .inject()
            .run_vcpu(&m.vm, &mut m.vcpu)
            .ret
    });
    assert!(p.step(|m| deliver_pending(&m.vm, &mut m.vcpu)));
    assert_ne!(p.read_entry(ste), before);
    // The delivery loaded the program-new PSW (from the table too): back to DAT on.
    let psw = Psw::DAT | Psw::EA | Psw::BA;
    for m in &mut p.m {
        m.vcpu.psw.mask = psw;
    }
    assert!(p.translate2(V21, Fetch).is_err());
}

#[test]
fn key_changes_clearing_r_on_table_frames() {
    let mut p = Pair::new(&[8, 78]);
    p.translate2(V4, Fetch).unwrap();
    let seg = p.entry(V4, TableLevel::Segment);
    let rtte = p.entry(V4, TableLevel::RegionThird);
    let pte = p.entry(V4, TableLevel::Page);
    // set_key without R: the next translation must set R again.
    p.step(|m| m.vm.set_storage_key(seg, StorageKey(0x50)))
        .unwrap();
    p.translate2(V4, Fetch).unwrap();
    assert!(p.m[1].vm.storage_key(seg).unwrap().referenced());
    // RRBE (update_key).
    p.step(|m| {
        let mut k = KvmS390Keyop::new(KVM_S390_KEYOP_RRBE, rtte.0, 0);
        (keyop(&m.vm, &mut k), k)
    });
    assert!(!p.m[1].vm.storage_key(rtte).unwrap().referenced());
    p.translate2(V4, Fetch).unwrap();
    assert!(p.m[1].vm.storage_key(rtte).unwrap().referenced());
    // SSKE (update_key with a whole new key).
    p.step(|m| {
        let mut k = KvmS390Keyop::new(KVM_S390_KEYOP_SSKE, pte.0, 0x30);
        (keyop(&m.vm, &mut k), k)
    });
    p.translate2(V4, Fetch).unwrap();
    assert!(p.m[1].vm.storage_key(pte).unwrap().referenced());
    // Enabling keys resets every key once; resetting again.
    p.step(|m| m.vm.enable_keys());
    p.translate2(V4, Fetch).unwrap();
    p.step(|m| m.vm.storage().reset_keys());
    p.translate2(V4, Fetch).unwrap();
    assert!(p.m[1].vm.storage_key(pte).unwrap().referenced());
}

#[test]
fn prefix_changes_the_absolute_address_of_a_4k_frame() {
    let mut p = Pair::new(&[8, 78]);
    let pte = p.entry(V4, TableLevel::Page);
    // Map V4 to real page 1 (inside the prefix area).
    p.step(|m| m.vm.storage().write_u64(pte, 0x1000)).unwrap();
    assert_eq!(frame(p.translate2(V4, Fetch)), 0x1000);
    for m in &mut p.m {
        m.vcpu.prefix = 0x6_0000;
    }
    assert_eq!(frame(p.translate2(V4, Fetch)), 0x6_1000);
}

#[test]
fn edat1_without_edat2_changes_a_1m_translation() {
    let mut p = Pair::new(&[8]);
    assert_eq!(frame(p.translate2(V1, Fetch)), 0x50_0000);
    for m in &mut p.m {
        m.vcpu.cr[0] &= !cr0::EDAT;
    }
    // Without EDAT-1 the FC=1 entry is read as a page-table origin (§11 item 4).
    let r = p.translate2(V1, Fetch);
    assert_ne!(r.map(|a| a.0 & !0xFFF), Ok(0x50_0000));
    for m in &mut p.m {
        m.vcpu.cr[0] |= cr0::EDAT;
    }
    assert_eq!(frame(p.translate2(V1, Fetch)), 0x50_0000);
}

#[test]
fn edat2_and_region_protection() {
    // Region P bits count only with EDAT-1 (§11 item 5).
    let mut p = Pair::new(&[8, 78]);
    let rste = p.entry(V4, TableLevel::RegionSecond);
    let v = p.read_entry(rste) | 0x200;
    p.step(|m| m.vm.storage().write_u64(rste, v)).unwrap();
    p.translate2(V4, Fetch).unwrap();
    assert!(p.translate2(V4, Store).is_err());
    for m in &mut p.m {
        m.vcpu.cr[0] &= !cr0::EDAT;
    }
    p.translate2(V4, Fetch).unwrap();
    p.translate2(V4, Store).unwrap();
}

#[test]
fn asce_changes() {
    let mut p = Pair::new(&[8, 78]);
    p.translate2(V4, Fetch).unwrap();
    let asce = p.m[0].vcpu.cr[1];
    // Table length 0: RFX01 of V4 is 0, still fine; a private space with CS segments.
    for (cr1, ok) in [
        (asce & !3, true),
        (asce | Asce::P, true),
        (asce ^ 0x8, false),
    ] {
        for m in &mut p.m {
            m.vcpu.cr[1] = cr1;
        }
        assert_eq!(p.translate2(V4, Fetch).is_ok(), ok, "{cr1:#x}");
    }
    // The secondary space (same tables, same ASCE) and DAT off.
    for m in &mut p.m {
        m.vcpu.cr[1] = asce;
        m.vcpu.psw.mask |= 2 << Psw::AS_SHIFT;
    }
    p.translate2(V4, Fetch).unwrap();
    for m in &mut p.m {
        m.vcpu.psw.mask &= !Psw::DAT;
    }
    p.translate2(0x40_0000, Fetch).unwrap();
}

#[test]
fn mode_dependent_outcomes_are_rederived() {
    let mut p = Pair::new(&[8, 78, 130]);
    let pte = p.entry(V4, TableLevel::Page);
    let v = p.read_entry(pte) | 0x200 | 0x100; // P and IEP
    p.step(|m| m.vm.storage().write_u64(pte, v)).unwrap();
    for m in &mut p.m {
        m.vcpu.cr[0] |= cr0::IEP;
    }
    // Cached by the fetch; the store and the instruction fetch fail from the cache.
    p.translate2(V4, Fetch).unwrap();
    assert!(p.translate2(V4, Store).is_err());
    assert!(p.translate2(V4, InstructionFetch).is_err());
    for m in &mut p.m {
        m.vcpu.cr[0] &= !cr0::IEP;
    }
    p.translate2(V4, InstructionFetch).unwrap();
}

#[test]
fn many_pages_and_memops_agree() {
    let mut p = Pair::new(&[8, 78]);
    for round in 0..3u64 {
        for i in 0..4 {
            p.translate(V4 + i * 4096 + round, Fetch).unwrap();
        }
        p.step(|m| {
            MemOp::logical_write(V4 + 0xFF0, vec![round as u8; 0x2000])
                .key(0)
                .run_vcpu(&m.vm, &mut m.vcpu)
        });
        p.step(|m| MemOp::logical_read(V4 + 0x10, 0x3000).run_vcpu(&m.vm, &mut m.vcpu));
    }
}
