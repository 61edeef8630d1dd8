//! The translation cache is invisible (§5.6 last note, §11 item 2: KVM has no TLB).
//!
//! Two identical machines (VM + vCPU) run the same random sequence of operations; one
//! vCPU has its translation cache on, the other off. After every step the results, the
//! whole guest memory, every storage key (R and C included: the walk sets R on the
//! table frames it reads, §10.3) and the vCPU state must be equal.
//!
//! Operations: translations (fetch, store, instruction fetch, with keys, through the
//! report API too); logical memops (read, write, CHECK_ONLY, INJECT, with keys, through
//! a mapping of the table area so that memops rewrite live tables); absolute memops,
//! absolute cmpxchg and plain storage writes (whole entries and single bytes) aimed at
//! random entries of the live tables; key changes (set, RRBE, SSKE, mark, reset,
//! enabling keys); control registers (EDAT, IEP, LAP, FPO, SPO; CR1/CR7/CR13 ASCEs with
//! other types, lengths, the private and real-space bits), PSW (DAT, address space,
//! addressing mode), access registers, the prefix; delivery of a pending program
//! interruption (lowcore stores, which may hit tables when the prefix points there).
//! Facilities (EDAT-1, EDAT-2, IEP) differ between cases.
use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::dat::builder::{LeafFlags, SpaceBuilder, entry_address};
use s390_gaccess::dat::{Asce, DesignationType, FrameSize, TableLevel};
use s390_gaccess::exception::AccessMode;
use s390_gaccess::keys::{AccessKey, StorageKey};
use s390_gaccess::memop::abi::{KVM_S390_KEYOP_RRBE, KVM_S390_KEYOP_SSKE, KvmS390Keyop};
use s390_gaccess::memop::{MemOp, deliver_pending, keyop};
use s390_gaccess::translate::{
    effective_address, translate, translate_address_with_key, walk_context,
};
use s390_gaccess::vcpu::{AddressSpaceControl, Psw, Vcpu, cr0};
use s390_gaccess::vm::{Facilities, Vm};
use std::sync::atomic::{AtomicUsize, Ordering};

const SLOTS: [(u64, u64); 2] = [(0, 4 << 20), (0x8000_0000, 1 << 20)];
const TABLES: u64 = 0x10_0000;
/// Primary (region-first) space.
const V4: u64 = (1 << 53) | (2 << 42) | (3 << 31) | (4 << 20); // 8 x 4K -> 0x30_0000
const V1: u64 = (1 << 53) | (2 << 42) | (3 << 31) | (5 << 20); // 1M -> 0x20_0000
const V2: u64 = (1 << 53) | (2 << 42) | (4 << 31); // 2G -> 0x8000_0000
const VT: u64 = (1 << 53) | (2 << 42) | (3 << 31) | (6 << 20); // 64 x 4K -> the tables
const VLOW: u64 = 0; // 2 x 4K -> 0x38_0000
const VP: u64 = (1 << 53) | (2 << 42) | (3 << 31) | (7 << 20); // 2 x 4K, P and IEP -> 0x30_0000
const V1P: u64 = (1 << 53) | (2 << 42) | (3 << 31) | (8 << 20); // 1M, P and IEP -> 0x20_0000
/// Secondary (segment) space.
const S4: u64 = 0x10_0000; // 8 x 4K -> 0x30_0000
const S1: u64 = 0x20_0000; // 1M -> 0x20_0000
const ST: u64 = 0x40_0000; // 64 x 4K -> the tables

/// Virtual addresses the operations pick from (plus a page and byte offset).
const VAS: [u64; 14] = [
    VP,
    V1P,
    V4,
    V4 + 7 * 4096,
    V4 + 8 * 4096, // unmapped page
    V1,
    V2,
    V2 + (1 << 20), // 2G frame beyond memory
    VT,
    VLOW,
    S4,
    S1,
    ST,
    0x7FFF_F000,
];

const PREFIXES: [u32; 4] = [0, 0x2000, 0x30_0000, TABLES as u32];

/// Interesting bits of table entries: invalid (region/segment, page), P, FC, IEP, TT,
/// TL, TF, CS/CR, Z, and origin/frame address bits.
const MASKS: [u64; 16] = [
    0x20,
    0x400,
    0x200,
    0x100,
    0x4,
    0x8,
    0x1,
    0x2,
    0x40,
    0x80,
    0x10,
    0x800,
    0x1000,
    0x10_0000,
    0x20_0000,
    0x8000_0000,
];

/// The two machines and what the layout looks like.
struct Machines {
    cached: (Vm, Vcpu),
    plain: (Vm, Vcpu),
    /// Addresses of entries on the walk paths of `VAS` in both spaces.
    live: Vec<u64>,
    /// Every table entry address.
    all: Vec<u64>,
    /// The ASCEs built: primary, secondary.
    asces: [Asce; 2],
}

fn build(facilities: &[u32]) -> (Vm, Vcpu, Vec<(u64, u64)>, [Asce; 2]) {
    let vm = Vm::new(&SLOTS, Facilities::from_numbers(facilities)).unwrap();
    let f = LeafFlags::default();
    let (tables, asces) = {
        let mut p =
            SpaceBuilder::new(vm.storage(), DesignationType::RegionFirst, TABLES, 3, 0).unwrap();
        p.map(V4, 0x30_0000, 8 * 4096, FrameSize::Size4K, f)
            .unwrap();
        p.map(V1, 0x20_0000, 1 << 20, FrameSize::Size1M, f).unwrap();
        p.map(V2, 0x8000_0000, 1 << 31, FrameSize::Size2G, f)
            .unwrap();
        p.map(VT, TABLES, 64 * 4096, FrameSize::Size4K, f).unwrap();
        p.map(VLOW, 0x38_0000, 2 * 4096, FrameSize::Size4K, f)
            .unwrap();
        let pf = LeafFlags {
            protect: true,
            iep: true,
        };
        p.map(VP, 0x30_0000, 2 * 4096, FrameSize::Size4K, pf)
            .unwrap();
        p.map(V1P, 0x20_0000, 1 << 20, FrameSize::Size1M, pf)
            .unwrap();
        let mut tables = p.tables().to_vec();
        let origin = (p.end() + 0xFFF) & !0xFFF;
        let mut s =
            SpaceBuilder::new(vm.storage(), DesignationType::Segment, origin, 3, 0).unwrap();
        s.map(S4, 0x30_0000, 8 * 4096, FrameSize::Size4K, f)
            .unwrap();
        s.map(S1, 0x20_0000, 1 << 20, FrameSize::Size1M, f).unwrap();
        s.map(ST, TABLES, 64 * 4096, FrameSize::Size4K, f).unwrap();
        tables.extend_from_slice(s.tables());
        assert!(
            s.end() <= TABLES + 64 * 4096,
            "tables inside the VT mapping"
        );
        (tables, [p.asce(), s.asce()])
    };
    let mut vcpu = Vcpu::new();
    vcpu.psw.mask |= Psw::DAT;
    vcpu.cr[0] |= cr0::EDAT;
    vcpu.cr[1] = asces[0].0;
    vcpu.cr[7] = asces[1].0;
    vcpu.cr[13] = asces[0].0;
    (vm, vcpu, tables, asces)
}

impl Machines {
    fn new(setup: &Setup) -> Self {
        let (vm_a, mut vcpu_a, tables, asces) = build(&setup.facilities);
        let (vm_b, mut vcpu_b, _, _) = build(&setup.facilities);
        vcpu_a.tlb.set_enabled(true);
        vcpu_b.tlb.set_enabled(false);
        let mut live = Vec::new();
        for asce in asces {
            for &va in &VAS {
                for level in TableLevel::ALL {
                    if let Ok(a) = entry_address(vm_a.storage(), asce, va, level) {
                        live.push(a.0);
                    }
                }
            }
        }
        live.sort_unstable();
        live.dedup();
        let all = tables
            .iter()
            .flat_map(|&(start, len)| (0..len / 8).map(move |i| start + i * 8))
            .collect();
        Self {
            cached: (vm_a, vcpu_a),
            plain: (vm_b, vcpu_b),
            live,
            all,
            asces,
        }
    }

    fn entry(&self, pick: EntryPick) -> u64 {
        match pick {
            EntryPick::Live(i) => self.live[i as usize % self.live.len()],
            EntryPick::Any(i) => self.all[i as usize % self.all.len()],
        }
    }

    /// A frame: mostly one holding a live entry, else any table frame, any frame of
    /// the first slot, or of the second.
    fn frame(&self, pick: u32) -> u64 {
        let n = pick as u64 / 8;
        match pick % 8 {
            0..6 => self.live[n as usize % self.live.len()] & !0xFFF,
            6 => match n % 3 {
                0 => TABLES + (n % 64) * 4096,
                1 => (n % 1024) * 4096,
                _ => 0x8000_0000 + (n % 256) * 4096,
            },
            _ => TABLES + (n % 64) * 4096,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum EntryPick {
    Live(u32),
    Any(u32),
}

#[derive(Clone, Copy, Debug)]
enum Mutation {
    Xor(u64),
    CopyFrom(EntryPick),
    Value(u64),
    Byte { offset: u8, value: u8 },
}

#[derive(Clone, Copy, Debug)]
enum WritePath {
    /// `GuestStorage::write_u64` (scenario and builder writes).
    Storage,
    /// A vm ABSOLUTE_WRITE memop.
    AbsoluteMemop,
    /// A vcpu LOGICAL_WRITE memop through the mapping of the table area.
    LogicalMemop,
}

#[derive(Clone, Debug)]
enum Op {
    Translate {
        va: u64,
        mode: u8,
        key: u8,
        ar: u8,
    },
    /// Several fetch/store/ifetch translations in a row, key 0, each done twice.
    Burst(Vec<(u64, u8)>),
    Report {
        va: u64,
        mode: u8,
        key: u8,
    },
    Logical {
        va: u64,
        size: u32,
        write: bool,
        key: Option<u8>,
        check: bool,
        inject: bool,
        ar: u8,
    },
    Absolute {
        addr: u64,
        size: u32,
        write: bool,
        key: Option<u8>,
    },
    TableWrite {
        entry: EntryPick,
        mutation: Mutation,
        path: WritePath,
    },
    TableCmpxchg {
        entry: EntryPick,
        mask: u64,
        key: Option<u8>,
    },
    SetKey {
        frame: u32,
        key: u8,
    },
    Rrbe {
        frame: u32,
    },
    Sske {
        frame: u32,
        key: u8,
    },
    Mark {
        frame: u32,
        bits: u8,
    },
    ResetKeys,
    EnableKeys,
    Cr0 {
        mask: u64,
        on: bool,
    },
    SetAsce {
        cr: usize,
        which: u8,
    },
    Psw {
        dat: bool,
        asc: u8,
        amode: u8,
    },
    Prefix(u32),
    Ar {
        n: usize,
        alet: u32,
    },
    Deliver,
}

#[derive(Clone, Debug)]
struct Setup {
    facilities: Vec<u32>,
}

struct Reference;

fn entry_pick() -> impl Strategy<Value = EntryPick> {
    prop_oneof![
        3 => any::<u32>().prop_map(EntryPick::Live),
        1 => any::<u32>().prop_map(EntryPick::Any),
    ]
}

fn va() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => (prop::sample::select(&VAS[..]), 0u64..2, 0u64..4096)
            .prop_map(|(v, p, o)| v + p * 4096 + o),
        1 => any::<u64>(),
    ]
}

fn key() -> impl Strategy<Value = u8> {
    prop::sample::select(vec![0u8, 0, 3, 5, 9])
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => prop::sample::select(&MASKS[..]).prop_map(Mutation::Xor),
        2 => entry_pick().prop_map(Mutation::CopyFrom),
        1 => any::<u64>().prop_map(Mutation::Value),
        1 => (0u8..8, any::<u8>()).prop_map(|(offset, value)| Mutation::Byte { offset, value }),
    ]
}

fn storage_key() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(0u8),
        Just(StorageKey::REFERENCE),
        Just(0x50),
        Just(0x58),
        Just(0x96),
        any::<u8>(),
    ]
}

impl ReferenceStateMachine for Reference {
    type State = Setup;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Setup> {
        (any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(e1, e2, iep)| {
                let mut facilities = Vec::new();
                if e1 {
                    facilities.push(Facilities::EDAT1);
                }
                if e2 {
                    facilities.push(Facilities::EDAT2);
                }
                if iep {
                    facilities.push(Facilities::IEP);
                }
                Setup { facilities }
            })
            .boxed()
    }

    fn transitions(_: &Setup) -> BoxedStrategy<Op> {
        let mode = 0u8..3;
        prop_oneof![
            12 => (va(), mode.clone(), key(), prop::sample::select(vec![0u8, 0, 1, 2]))
                .prop_map(|(va, mode, key, ar)| Op::Translate { va, mode, key, ar }),
            4 => prop::collection::vec((va(), mode.clone()), 2..12).prop_map(Op::Burst),
            1 => (va(), mode, key()).prop_map(|(va, mode, key)| Op::Report { va, mode, key }),
            5 => (
                va(),
                prop::sample::select(vec![1u32, 8, 100, 4096, 5000, 8192 + 17]),
                any::<bool>(),
                prop::option::of(key()),
                prop::bool::weighted(0.2),
                prop::bool::weighted(0.2),
                prop::sample::select(vec![0u8, 1, 2]),
            )
                .prop_map(|(va, size, write, key, check, inject, ar)| Op::Logical {
                    va,
                    size,
                    write,
                    key,
                    check,
                    inject,
                    ar,
                }),
            1 => (
                prop_oneof![TABLES..TABLES + 0x4_0000, 0..0x40_0000u64, any::<u64>()],
                prop::sample::select(vec![1u32, 8, 4096]),
                any::<bool>(),
                prop::option::of(key()),
            )
                .prop_map(|(addr, size, write, key)| Op::Absolute {
                    addr,
                    size,
                    write,
                    key
                }),
            3 => (
                entry_pick(),
                mutation(),
                prop_oneof![
                    Just(WritePath::Storage),
                    Just(WritePath::AbsoluteMemop),
                    Just(WritePath::LogicalMemop)
                ],
            )
                .prop_map(|(entry, mutation, path)| Op::TableWrite { entry, mutation, path }),
            1 => (entry_pick(), prop::sample::select(&MASKS[..]), prop::option::of(key()))
                .prop_map(|(entry, mask, key)| Op::TableCmpxchg { entry, mask, key }),
            2 => (any::<u32>(), storage_key()).prop_map(|(frame, key)| Op::SetKey { frame, key }),
            3 => any::<u32>().prop_map(|frame| Op::Rrbe { frame }),
            2 => (any::<u32>(), storage_key()).prop_map(|(frame, key)| Op::Sske { frame, key }),
            1 => (any::<u32>(), prop::sample::select(vec![4u8, 2, 6]))
                .prop_map(|(frame, bits)| Op::Mark { frame, bits }),
            1 => Just(Op::ResetKeys),
            1 => Just(Op::EnableKeys),
            2 => (
                prop::sample::select(vec![
                    cr0::EDAT,
                    cr0::EDAT,
                    cr0::IEP,
                    cr0::IEP,
                    cr0::LOW_ADDRESS_PROTECTION,
                    cr0::FETCH_PROTECTION_OVERRIDE,
                    cr0::STORAGE_PROTECTION_OVERRIDE,
                ]),
                any::<bool>(),
            )
                .prop_map(|(mask, on)| Op::Cr0 { mask, on }),
            2 => (prop::sample::select(vec![1usize, 7, 13]), 0u8..8)
                .prop_map(|(cr, which)| Op::SetAsce { cr, which }),
            2 => (prop::bool::weighted(0.8), 0u8..4, 0u8..4)
                .prop_map(|(dat, asc, amode)| Op::Psw { dat, asc, amode }),
            1 => prop::sample::select(&PREFIXES[..]).prop_map(Op::Prefix),
            1 => (0usize..3, prop::sample::select(vec![0u32, 1, 2]))
                .prop_map(|(n, alet)| Op::Ar { n, alet }),
            1 => Just(Op::Deliver),
        ]
        .boxed()
    }

    fn apply(state: Setup, _: &Op) -> Setup {
        state
    }
}

fn mode_of(m: u8) -> AccessMode {
    match m {
        0 => AccessMode::Fetch,
        1 => AccessMode::Store,
        _ => AccessMode::InstructionFetch,
    }
}

/// Translations asked, and how many of them the cache could answer.
static TRANSLATIONS: AtomicUsize = AtomicUsize::new(0);
static HITS: AtomicUsize = AtomicUsize::new(0);

/// One translation (`translate_address_with_key`), counting whether the cache held it.
fn translate_one(vm: &Vm, vcpu: &Vcpu, va: u64, mode: u8, key: u8, ar: u8) -> String {
    let mode = mode_of(mode);
    let k = AccessKey::new(key).unwrap();
    if vcpu.tlb.enabled() && vcpu.psw.dat() {
        let asce = match vcpu.psw.address_space() {
            AddressSpaceControl::Primary => Some(vcpu.cr[1]),
            AddressSpaceControl::Secondary => Some(vcpu.cr[7]),
            AddressSpaceControl::Home => Some(vcpu.cr[13]),
            AddressSpaceControl::AccessRegister => None,
        };
        if let Some(asce) = asce {
            let ctx = walk_context(vm, vcpu, Asce(asce), mode);
            let eff = effective_address(vcpu, va).0;
            TRANSLATIONS.fetch_add(1, Ordering::Relaxed);
            if vcpu.tlb.contains(vm.storage(), eff, &ctx) {
                HITS.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    format!(
        "{:?}",
        translate_address_with_key(vm, vcpu, va, ar, mode, k)
    )
}

/// Apply `op` to one machine; the outcome as text (compared between the machines).
fn run(m: &Machines, vm: &Vm, vcpu: &mut Vcpu, op: &Op) -> String {
    match *op {
        Op::Translate { va, mode, key, ar } => translate_one(vm, vcpu, va, mode, key, ar),
        Op::Burst(ref list) => list
            .iter()
            .chain(list.iter())
            .map(|&(va, mode)| translate_one(vm, vcpu, va, mode, 0, 0))
            .collect::<Vec<_>>()
            .join("\n"),
        Op::Report { va, mode, key } => {
            let k = AccessKey::new(key).unwrap();
            format!("{:?}", translate(vm, vcpu, va, 0, mode_of(mode), k))
        }
        Op::Logical {
            va,
            size,
            write,
            key,
            check,
            inject,
            ar,
        } => {
            let mut op = if write {
                MemOp::logical_write(va, vec![0xC3; size as usize])
            } else {
                MemOp::logical_read(va, size)
            };
            if let Some(k) = key {
                op = op.key(k);
            }
            if check {
                op = op.check_only();
            }
            if inject {
                op = op.inject();
            }
            format!("{:?}", op.ar(ar).run_vcpu(vm, vcpu))
        }
        Op::Absolute {
            addr,
            size,
            write,
            key,
        } => {
            let mut op = if write {
                MemOp::absolute_write(addr, vec![0x3C; size as usize])
            } else {
                MemOp::absolute_read(addr, size)
            };
            if let Some(k) = key {
                op = op.key(k);
            }
            format!("{:?}", op.run_vm(vm))
        }
        Op::TableWrite {
            entry,
            mutation,
            path,
        } => {
            let addr = m.entry(entry);
            let s = vm.storage();
            let old = s.read_u64(AbsoluteAddress(addr)).unwrap();
            let (at, bytes): (u64, Vec<u8>) = match mutation {
                Mutation::Xor(x) => (addr, (old ^ x).to_be_bytes().to_vec()),
                Mutation::CopyFrom(p) => {
                    let v = s.read_u64(AbsoluteAddress(m.entry(p))).unwrap();
                    (addr, v.to_be_bytes().to_vec())
                }
                Mutation::Value(v) => (addr, v.to_be_bytes().to_vec()),
                Mutation::Byte { offset, value } => (addr + offset as u64, vec![value]),
            };
            match path {
                WritePath::Storage => format!("{:?}", s.write(AbsoluteAddress(at), &bytes)),
                WritePath::AbsoluteMemop => {
                    format!("{:?}", MemOp::absolute_write(at, bytes).run_vm(vm))
                }
                WritePath::LogicalMemop => {
                    let va = VT + (at - TABLES);
                    format!("{:?}", MemOp::logical_write(va, bytes).run_vcpu(vm, vcpu))
                }
            }
        }
        Op::TableCmpxchg { entry, mask, key } => {
            let addr = m.entry(entry);
            let old = vm.storage().read_u64(AbsoluteAddress(addr)).unwrap();
            let mut op = MemOp::absolute_cmpxchg(
                addr,
                (old ^ mask).to_be_bytes().to_vec(),
                old.to_be_bytes().to_vec(),
            );
            if let Some(k) = key {
                op = op.key(k);
            }
            format!("{:?}", op.run_vm(vm))
        }
        Op::SetKey { frame, key } => format!(
            "{:?}",
            vm.set_storage_key(AbsoluteAddress(m.frame(frame)), StorageKey(key))
        ),
        Op::Rrbe { frame } => {
            let mut k = KvmS390Keyop::new(KVM_S390_KEYOP_RRBE, m.frame(frame), 0);
            format!("{} {:?}", keyop(vm, &mut k), k)
        }
        Op::Sske { frame, key } => {
            let mut k = KvmS390Keyop::new(KVM_S390_KEYOP_SSKE, m.frame(frame), key);
            format!("{} {:?}", keyop(vm, &mut k), k)
        }
        Op::Mark { frame, bits } => {
            vm.storage().mark(AbsoluteAddress(m.frame(frame)), bits);
            String::new()
        }
        Op::ResetKeys => {
            vm.storage().reset_keys();
            String::new()
        }
        Op::EnableKeys => format!("{}", vm.enable_keys()),
        Op::Cr0 { mask, on } => {
            if on {
                vcpu.cr[0] |= mask;
            } else {
                vcpu.cr[0] &= !mask;
            }
            String::new()
        }
        Op::SetAsce { cr, which } => {
            let [p, s] = m.asces;
            vcpu.cr[cr] = match which {
                0 => p.0,
                1 => s.0,
                2 => p.0 | Asce::P,
                3 => s.0 | Asce::P,
                4 => p.0 & !3,                        // TL 0
                5 => (s.0 & !0xC) | (1 << 2),         // a segment table called region-third
                6 => p.0 | Asce::R,                   // real space
                _ => (p.0 & !0xC) | (2 << 2) | 0x100, // region-first table as region-second, private
            };
            String::new()
        }
        Op::Psw { dat, asc, amode } => {
            let mut mask = vcpu.psw.mask & !(Psw::DAT | Psw::AS_MASK | Psw::EA | Psw::BA);
            if dat {
                mask |= Psw::DAT;
            }
            mask |= (asc as u64) << Psw::AS_SHIFT;
            mask |= match amode {
                0 => Psw::EA | Psw::BA,
                1 => Psw::BA,
                2 => 0,
                _ => Psw::EA,
            };
            vcpu.psw.mask = mask;
            String::new()
        }
        Op::Prefix(p) => {
            vcpu.prefix = p;
            String::new()
        }
        Op::Ar { n, alet } => {
            vcpu.ar[n] = alet;
            String::new()
        }
        Op::Deliver => format!("{}", deliver_pending(vm, vcpu)),
    }
}

/// Both machines' memory, keys and vCPU state are the same.
fn assert_same(m: &Machines, step: &Op) {
    let (a, b) = (&m.cached, &m.plain);
    assert_eq!(a.1, b.1, "vCPU state after {step:?}");
    let mut x = vec![0u8; 1 << 20];
    let mut y = vec![0u8; 1 << 20];
    for &(start, size) in &SLOTS {
        let mut at = start;
        while at < start + size {
            a.0.storage().read(AbsoluteAddress(at), &mut x).unwrap();
            b.0.storage().read(AbsoluteAddress(at), &mut y).unwrap();
            assert!(x == y, "memory at {at:#x} differs after {step:?}");
            at += 1 << 20;
        }
        for f in (start..start + size).step_by(4096) {
            let fa = AbsoluteAddress(f);
            assert_eq!(
                a.0.storage_key(fa),
                b.0.storage_key(fa),
                "key of frame {f:#x} after {step:?}"
            );
        }
    }
}

impl StateMachineTest for Machines {
    type SystemUnderTest = Self;
    type Reference = Reference;

    fn init_test(setup: &Setup) -> Self {
        let m = Machines::new(setup);
        assert_same(&m, &Op::Deliver);
        m
    }

    fn apply(mut m: Self, _: &Setup, op: Op) -> Self {
        let (mut va, mut vb) = (
            std::mem::take(&mut m.cached.1),
            std::mem::take(&mut m.plain.1),
        );
        let ra = run(&m, &m.cached.0, &mut va, &op);
        let rb = run(&m, &m.plain.0, &mut vb, &op);
        m.cached.1 = va;
        m.plain.1 = vb;
        assert_eq!(ra, rb, "outcome of {op:?}");
        assert_same(&m, &op);
        m
    }
}

prop_state_machine! {
    #![proptest_config(Config {
        cases: if cfg!(debug_assertions) { 32 } else { 160 },
        max_shrink_iters: 2048,
        ..Config::default()
    })]

    #[test]
    fn cached_and_uncached_machines_agree(sequential 1..120 => Machines);
}

/// The random sequences do reach the cache: a deterministic run with repeated
/// translations hits, and every hit agrees with the uncached machine.
#[test]
fn sequences_hit_the_cache() {
    let mut m = Machines::new(&Setup {
        facilities: vec![Facilities::EDAT1, Facilities::EDAT2, Facilities::IEP],
    });
    let before = HITS.load(Ordering::Relaxed);
    let ops = [
        Op::Translate {
            va: V4 + 5,
            mode: 0,
            key: 0,
            ar: 0,
        },
        Op::Translate {
            va: V4 + 9,
            mode: 1,
            key: 0,
            ar: 0,
        },
        Op::TableWrite {
            entry: EntryPick::Live(3),
            mutation: Mutation::Xor(0x200),
            path: WritePath::LogicalMemop,
        },
        Op::Translate {
            va: V4 + 5,
            mode: 1,
            key: 0,
            ar: 0,
        },
        Op::Rrbe { frame: 0 },
        Op::Translate {
            va: V4 + 5,
            mode: 0,
            key: 0,
            ar: 0,
        },
    ];
    for op in ops {
        m = <Machines as StateMachineTest>::apply(m, &Setup { facilities: vec![] }, op);
    }
    assert!(HITS.load(Ordering::Relaxed) > before);
    assert!(!m.cached.1.tlb.is_empty());
}
