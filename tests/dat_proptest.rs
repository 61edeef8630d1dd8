//! Property tests of the translation engine (kernel-semantics.md §5.1-§5.7, §9.3):
//!
//! (a) every mapped address translates to what was mapped — all four designation
//!     types, 4 KiB / 1 MiB / 2 GiB frames, random virtual and absolute frames, random
//!     offsets, prefixing of 4 KiB frames, DAT protection of random leaves;
//! (b) each kind of broken entry yields the code and TEID §5.6 and §9.3 prescribe;
//! (c) nothing panics or overflows (run in debug) whatever the tables, registers,
//!     addresses and origins are.
//!
//! Expected values are computed here from the spec, not by the code under test.

mod common;

use common::*;
use proptest::prelude::*;
use s390_gaccess::access::{Buffer, access_logical, check_logical};
use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::dat::builder::{LeafFlags, SpaceBuilder, entry_address};
use s390_gaccess::dat::{Asce, DesignationType, FrameSize, TableLevel, WalkContext, walk};
use s390_gaccess::exception::{AccessError, AccessMode, Errno};
use s390_gaccess::keys::AccessKey;
use s390_gaccess::translate::{translate, translate_address_with_key};
use s390_gaccess::vcpu::{Psw, cr0};

const CASES: u32 = 256;

/// §5.7, written out again: real → absolute under prefix `p`.
fn prefixed(r: u64, p: u64) -> u64 {
    if r < 0x2000 {
        r + p
    } else if r >= p && r < p + 0x2000 {
        r - p
    } else {
        r
    }
}

fn frame_bytes(f: FrameSize) -> u64 {
    match f {
        Size4K => 1 << 12,
        Size1M => 1 << 20,
        Size2G => 1 << 31,
    }
}

/// The highest virtual address a designation type with TL 3 covers, plus one, as a
/// bit count.
fn space_bits(dt: DesignationType) -> u32 {
    match dt {
        RegionFirst => 64,
        RegionSecond => 53,
        RegionThird => 42,
        Segment => 31,
    }
}

fn dt_strategy() -> impl Strategy<Value = DesignationType> {
    prop_oneof![
        Just(RegionFirst),
        Just(RegionSecond),
        Just(RegionThird),
        Just(Segment)
    ]
}

fn mode_strategy() -> impl Strategy<Value = AccessMode> {
    prop_oneof![Just(Fetch), Just(Store)]
}

// ------------------------------------------------------------------------------------
// (a) mapped addresses translate to what was mapped
// ------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct MapReq {
    /// 0 = 4 KiB, 1 = 1 MiB, 2 = 2 GiB (reduced to what the designation type allows).
    size: u8,
    virt: u64,
    /// Frame choice: selector and random page index.
    sel: u8,
    page: u64,
    protect: bool,
    offsets: [u64; 3],
}

fn map_req() -> impl Strategy<Value = MapReq> {
    (
        0u8..3,
        any::<u64>(),
        0u8..6,
        any::<u64>(),
        any::<bool>(),
        any::<[u64; 3]>(),
    )
        .prop_map(|(size, virt, sel, page, protect, offsets)| MapReq {
            size,
            virt,
            sel,
            page,
            protect,
            offsets,
        })
}

/// Memory of the mapping property: 64 MiB at 0 (tables at 1-2 MiB, frames elsewhere)
/// and 6 GiB at 2 GiB for 2 GiB frames.
const SLOTS_A: [(u64, u64); 2] = [(0, 64 << 20), (2 << 30, 6 << 30)];

/// The absolute (for 4 KiB: real) frame a request maps to, avoiding the table area
/// 0x10_0000..0x20_0000.
fn frame_for(req: &MapReq, size: FrameSize, prefix: u64) -> u64 {
    match size {
        Size4K => match req.sel {
            0 => 0,
            1 => 0x1000,
            2 => prefix,
            3 => prefix + 0x1000,
            4 => (req.page % 0x100) << 12,
            _ => (0x200 + req.page % 0x3E00) << 12,
        },
        Size1M => {
            let i = req.page % 63;
            (if i == 0 { 0 } else { i + 1 }) << 20
        }
        Size2G => (1 + req.page % 3) << 31,
    }
}

#[derive(Debug, Clone)]
struct MapCase {
    dt: DesignationType,
    reqs: Vec<MapReq>,
    prefix_sel: u64,
    as_sel: u8,
    mode31: bool,
    high_garbage: u64,
    private: bool,
    edat_noise: (bool, bool, bool),
}

fn map_case() -> impl Strategy<Value = MapCase> {
    (
        dt_strategy(),
        prop::collection::vec(map_req(), 1..5),
        any::<u64>(),
        0u8..3,
        any::<bool>(),
        any::<u64>(),
        any::<bool>(),
        any::<(bool, bool, bool)>(),
    )
        .prop_map(
            |(dt, reqs, prefix_sel, as_sel, mode31, high_garbage, private, edat_noise)| MapCase {
                dt,
                reqs,
                prefix_sel,
                as_sel,
                mode31,
                high_garbage,
                private,
                edat_noise,
            },
        )
}

fn run_map_case(c: &MapCase) -> Result<(), TestCaseError> {
    // Prefix: 0, below the tables, or above them (8 KiB aligned).
    let prefix = match c.prefix_sel % 3 {
        0 => 0,
        1 => (c.prefix_sel >> 8) % 0x7F * 0x2000,
        _ => (0x100 + (c.prefix_sel >> 8) % 0x1F00) * 0x2000,
    };
    let large = c.reqs.iter().any(|r| r.size > 0);
    let facs: Vec<u32> = if large {
        vec![8, 78]
    } else {
        [(c.edat_noise.0, 8), (c.edat_noise.1, 78)]
            .iter()
            .filter(|x| x.0)
            .map(|x| x.1)
            .collect()
    };
    let mut g = Guest::with_slots(&SLOTS_A, &facs);
    let flags = if c.private { Asce::P } else { 0 };
    let bits = space_bits(c.dt);
    let mut done: Vec<(u64, u64, FrameSize, usize)> = Vec::new();
    let asce = {
        let mut b = SpaceBuilder::new(g.vm.storage(), c.dt, TABLES, 3, flags).unwrap();
        for (ri, r) in c.reqs.iter().enumerate() {
            let size = match (r.size, c.dt) {
                (2, Segment) | (0, _) => Size4K,
                (1, _) => Size1M,
                _ => Size2G,
            };
            let n = frame_bytes(size);
            let virt = if bits == 64 {
                r.virt
            } else {
                r.virt & ((1 << bits) - 1)
            } & !(n - 1);
            let frame = frame_for(r, size, prefix);
            let leaf = LeafFlags {
                protect: r.protect,
                iep: false,
            };
            if b.map(virt, frame, n, size, leaf).is_ok() {
                done.push((virt, frame, size, ri));
            }
        }
        b.asce()
    };
    g.dat_on(asce);
    if !large && !c.edat_noise.2 {
        g.vcpu.cr[0] &= !cr0::EDAT;
    }
    g.vcpu.prefix = prefix as u32;
    let as_bits = [AS_PRIMARY, AS_SECONDARY, AS_HOME][c.as_sel as usize];
    g.vcpu.psw.mask |= as_bits;
    g.vcpu.cr[7] = asce.0;
    g.vcpu.cr[13] = asce.0;
    let mode31 = c.mode31 && c.dt == Segment;
    if mode31 {
        g.vcpu.psw.mask &= !Psw::EA;
    }
    let teid_as = as_bits >> 46;

    for (i, &(virt, frame, size, ri)) in done.iter().enumerate() {
        let r = &c.reqs[ri];
        let protect = r.protect;
        let n = frame_bytes(size);
        // A later mapping over the same range replaced this one.
        if done[i + 1..]
            .iter()
            .any(|&(v2, _, s2, _)| v2 < virt + n && virt < v2 + frame_bytes(s2))
        {
            continue;
        }
        for off in [
            0,
            n - 1,
            r.offsets[0] % n,
            r.offsets[1] % n,
            r.offsets[2] % n,
        ] {
            let v = virt + off;
            let ga = if mode31 {
                v | (c.high_garbage << 31)
            } else {
                v
            };
            let want = if size == Size4K {
                prefixed(frame + off, prefix)
            } else {
                frame + off
            };
            prop_assert_eq!(
                g.xlate(ga, Fetch).ok(),
                Some(want),
                "fetch {:#x} {:?}",
                v,
                size
            );
            let st = g.xlate(ga, Store);
            if protect {
                let teid = (v & !0xFFF) | 0x400 | 0x4 | teid_as;
                let i = pgm(st);
                prop_assert_eq!((i.code, i.teid.0, i.exc_access_id), (0x04, teid, 0));
            } else {
                prop_assert_eq!(st.ok(), Some(want));
            }
            let rep = translate(&g.vm, &g.vcpu, ga, 0, Fetch, AccessKey::ZERO);
            prop_assert_eq!(rep.result.ok(), Some((AbsoluteAddress(want), size)));
            // Data moves through the same translation.
            let marker = (v as u8) ^ 0x5A;
            g.write(want, &[marker]);
            prop_assert_eq!(g.fetch(ga, 0, 1, 0).ok(), Some(vec![marker]));
            if !protect {
                g.store(ga, 0, &[!marker], 0).unwrap();
                prop_assert_eq!(g.read(want, 1), vec![!marker]);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    /// §5.6, §5.7, §8.2: mapped addresses translate to the mapped frames.
    #[test]
    fn mapped_addresses_translate(c in map_case()) {
        run_map_case(&c)?;
    }
}

// ------------------------------------------------------------------------------------
// (b) broken entries
// ------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Break {
    Invalid,
    WrongTt(u64),
    OffsetLength(u8),
    ZBit,
    CommonPrivate,
    EntryOutside(u8),
    FrameOutside(u8),
}

fn break_strategy() -> impl Strategy<Value = Break> {
    prop_oneof![
        Just(Break::Invalid),
        (1u64..4).prop_map(Break::WrongTt),
        any::<u8>().prop_map(Break::OffsetLength),
        Just(Break::ZBit),
        Just(Break::CommonPrivate),
        (0u8..3).prop_map(Break::EntryOutside),
        (0u8..3).prop_map(Break::FrameOutside),
    ]
}

/// Addresses outside the 64 MiB at 0, none of which wraps back into it when a table
/// index is added.
const OUTSIDE: [u64; 3] = [0x4000_0000, 0x2_0000_0000_0000, 0xFFFF_FFFF_FFF0_0000];

fn levels_of(dt: DesignationType) -> Vec<TableLevel> {
    let top = dt.level();
    TableLevel::ALL.into_iter().filter(|&l| l >= top).collect()
}

/// The code for an invalid entry at `level` (§5.6 check 1 per level).
fn invalid_code(level: TableLevel) -> u16 {
    match level {
        TableLevel::RegionFirst => 0x39,
        TableLevel::RegionSecond => 0x3A,
        TableLevel::RegionThird => 0x3B,
        TableLevel::Segment => 0x10,
        TableLevel::Page => 0x11,
    }
}

/// Top two bits of the index of the level below `level` (RSX01, RTX01, SX01).
fn lower_top2(level: TableLevel, v: u64) -> u64 {
    match level {
        TableLevel::RegionFirst => (v >> 51) & 3,
        TableLevel::RegionSecond => (v >> 40) & 3,
        _ => (v >> 29) & 3,
    }
}

#[derive(Debug, Clone)]
struct BreakCase {
    dt: DesignationType,
    virt: u64,
    level_sel: usize,
    brk: Break,
    mode: AccessMode,
    ar: u8,
    as_sel: u8,
    len: usize,
}

fn break_case() -> impl Strategy<Value = BreakCase> {
    (
        dt_strategy(),
        any::<u64>(),
        0usize..5,
        break_strategy(),
        mode_strategy(),
        0u8..16,
        0u8..3,
        1usize..64,
    )
        .prop_map(
            |(dt, virt, level_sel, brk, mode, ar, as_sel, len)| BreakCase {
                dt,
                virt,
                level_sel,
                brk,
                mode,
                ar,
                as_sel,
                len,
            },
        )
}

/// What a broken entry must give: code, TEID, access id (None for an inapplicable
/// combination).
fn run_break_case(c: &BreakCase) -> Result<(), TestCaseError> {
    let bits = space_bits(c.dt);
    let v = if bits == 64 {
        c.virt
    } else {
        c.virt & ((1 << bits) - 1)
    };
    let levels = levels_of(c.dt);
    let level = levels[c.level_sel % levels.len()];
    let private = matches!(c.brk, Break::CommonPrivate);
    let mut g = Guest::with_slots(&[(0, 64 << 20)], &[8, 78]);
    let asce = g.space(c.dt, TABLES, 3, if private { Asce::P } else { 0 }, |b| {
        b.map(v & !0xFFF, FRAME, 0x1000, Size4K, LeafFlags::default())
    });
    g.dat_on(asce);
    let as_bits = [AS_PRIMARY, AS_SECONDARY, AS_HOME][c.as_sel as usize];
    g.vcpu.psw.mask |= as_bits;
    g.vcpu.cr[7] = asce.0;
    g.vcpu.cr[13] = asce.0;
    let ea = |l| entry_address(g.vm.storage(), asce, v, l).unwrap().0;
    let at = ea(level);
    let e = g.read_u64(at);
    let is_region = level < TableLevel::Segment;
    let teid = (v & !0xFFF) | if c.mode == Store { 0x400 } else { 0x800 } | (as_bits >> 46);
    // (code, teid, aid) expected.
    let want: (u16, u64, u8) = match c.brk {
        Break::Invalid => {
            let i = if level == TableLevel::Page {
                0x400
            } else {
                0x20
            };
            g.write_u64(at, e | i);
            (invalid_code(level), teid, c.ar)
        }
        Break::WrongTt(d) => {
            if level == TableLevel::Page {
                return Ok(());
            }
            let tt = (e >> 2) & 3;
            g.write_u64(at, (e & !0xC) | (((tt + d) & 3) << 2));
            (0x12, 0, 0)
        }
        Break::OffsetLength(r) => {
            if !(is_region) {
                return Ok(());
            }
            let top2 = lower_top2(level, v);
            let (tf, tl) = if top2 < 3 && (top2 == 0 || r & 1 == 0) {
                (top2 + 1 + (r as u64 >> 1) % (3 - top2), 3)
            } else {
                (0, (r as u64 >> 1) % top2)
            };
            g.write_u64(at, (e & !0xC3) | (tf << 6) | tl);
            let code = invalid_code(level.lower().unwrap());
            (code, teid, c.ar)
        }
        Break::ZBit => {
            if level != TableLevel::Page {
                return Ok(());
            }
            g.write_u64(at, e | 0x800);
            (0x12, 0, 0)
        }
        Break::CommonPrivate => {
            if level != TableLevel::Segment && level != TableLevel::RegionThird {
                return Ok(());
            }
            g.write_u64(at, e | 0x10);
            (0x12, 0, 0)
        }
        Break::EntryOutside(o) => {
            let out = OUTSIDE[o as usize];
            if level == c.dt.level() {
                g.vcpu.cr[1] = (asce.0 & 0xFFF) | out;
                g.vcpu.cr[7] = g.vcpu.cr[1];
                g.vcpu.cr[13] = g.vcpu.cr[1];
            } else {
                let parent = levels[levels.iter().position(|&l| l == level).unwrap() - 1];
                let pa = ea(parent);
                let pe = g.read_u64(pa);
                let keep = if parent == TableLevel::Segment {
                    0x7FF
                } else {
                    0xFFF
                };
                g.write_u64(pa, (pe & keep) | out);
            }
            (0x05, 0, 0)
        }
        Break::FrameOutside(o) => {
            if level != TableLevel::Page {
                return Ok(());
            }
            g.write_u64(at, (e & 0xFFF) | OUTSIDE[o as usize]);
            (0x05, 0, 0)
        }
    };
    let info = |r: Result<(), AccessError>| -> (u16, u64, u8) {
        let i = pgm(r);
        (i.code, i.teid.0, i.exc_access_id)
    };
    let ga = v;
    prop_assert_eq!(info(g.xlate_ar(ga, c.ar, c.mode).map(|_| ())), want);
    let len = c.len.min(0x1000 - (ga & 0xFFF) as usize);
    prop_assert_eq!(info(g.check(ga, c.ar, len as u64, c.mode, 0)), want);
    let r = match c.mode {
        Store => g.store(ga, c.ar, &vec![0xEE; len], 0),
        _ => g.fetch(ga, c.ar, len, 0).map(|_| ()),
    };
    prop_assert_eq!(info(r), want);
    prop_assert_eq!(g.read(FRAME, 0x1000), vec![0u8; 0x1000]);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    /// §5.6 step C, §9.3: each kind of broken entry gives its code and record.
    #[test]
    fn broken_entries_give_their_exception(c in break_case()) {
        run_break_case(&c)?;
    }
}

// ------------------------------------------------------------------------------------
// (c) no panics
// ------------------------------------------------------------------------------------

const TOP: u64 = 0u64.wrapping_sub(1 << 20);
/// Two small memslots: 1 MiB at 0 and 1 MiB ending at 2^64; random contents in the
/// first 64 KiB of each.
const SLOTS_C: [(u64, u64); 2] = [(0, 1 << 20), (TOP, 1 << 20)];

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability 1/n.
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    /// A value that often looks like a table entry or origin pointing into the filled
    /// areas, sometimes near 2^64, sometimes anything.
    fn plausible(&mut self) -> u64 {
        let x = self.next();
        let low = self.next() & 0xFFF;
        match x % 8 {
            0..=2 => (((x >> 8) % 0x1_0000) & !0x7FF) | low,
            3 | 4 => TOP.wrapping_add(((x >> 8) % 0x1_0000) & !0x7FF) | low,
            5 => (0u64.wrapping_sub((x >> 8) % 0x8000) & !0x7FF) | low,
            6 => x & 0x7FFF_FFFF,
            _ => x,
        }
    }
}

#[derive(Debug, Clone)]
struct ChaosCase {
    seed: u64,
    psw_bits: u64,
    addr_sel: u8,
    addr: u64,
    len: u64,
    ar: u8,
    key: u8,
    mode: u8,
    facs: u8,
    prefix: u32,
}

fn chaos_case() -> impl Strategy<Value = ChaosCase> {
    (
        any::<u64>(),
        any::<u64>(),
        0u8..4,
        any::<u64>(),
        1u64..0x10001,
        0u8..17,
        0u8..16,
        0u8..3,
        any::<u8>(),
        any::<u32>(),
    )
        .prop_map(
            |(seed, psw_bits, addr_sel, addr, len, ar, key, mode, facs, prefix)| ChaosCase {
                seed,
                psw_bits,
                addr_sel,
                addr,
                len,
                ar,
                key,
                mode,
                facs,
                prefix,
            },
        )
}

const MEMOP_CODES: [u16; 15] = [
    0x04, 0x05, 0x10, 0x11, 0x12, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x38, 0x39, 0x3A, 0x3B,
];

/// The record of any program interruption must be consistent with §9.3.
fn check_record(
    r: &Result<(), AccessError>,
    psw_as: u64,
    ar: u8,
    mode: AccessMode,
) -> Result<(), TestCaseError> {
    match r {
        Ok(()) => {}
        Err(AccessError::Errno(e)) => prop_assert_eq!(*e, Errno::Einval),
        Err(AccessError::Program(p)) => {
            let i = p.info;
            prop_assert!(MEMOP_CODES.contains(&i.code), "code {:#x}", i.code);
            prop_assert_eq!(i.op_access_id, 0);
            prop_assert_eq!(i.flags, 0);
            match i.code {
                0x04 | 0x10 | 0x11 | 0x38 | 0x39 | 0x3A | 0x3B => {
                    prop_assert_eq!(i.teid.0 & 3, psw_as);
                    let fsi = if mode == Store { 1 } else { 2 };
                    prop_assert_eq!((i.teid.0 >> 10) & 3, fsi);
                    prop_assert_eq!(i.exc_access_id, ar);
                }
                0x29..=0x2D => {
                    prop_assert_eq!(i.teid.0, 0);
                    prop_assert_eq!(i.exc_access_id, ar);
                }
                _ => {
                    prop_assert_eq!(i.teid.0, 0);
                    prop_assert_eq!(i.exc_access_id, 0);
                }
            }
        }
    }
    Ok(())
}

/// A structured random entry: an origin in a filled area with plausible low bits
/// (table type, offset, length, invalid/protection/format bits), or anything.
fn entry_like(rng: &mut SplitMix) -> u64 {
    let x = rng.next();
    if x.is_multiple_of(4) {
        return rng.plausible();
    }
    let base = if x & 0x10 == 0 { 0 } else { TOP };
    let origin = base.wrapping_add((x >> 8) % 0x1_0000) & !0x7FF;
    let y = rng.next();
    let tt = (y >> 2) & 3;
    let tf = if y & 0x100 == 0 { 0 } else { (y >> 6) & 3 };
    let tl = if y & 0x200 == 0 { 3 } else { y & 3 };
    let rare = |bit: u64, shift: u32| {
        if (y >> shift).is_multiple_of(8) {
            bit
        } else {
            0
        }
    };
    // I (0x20 / PTE 0x400), P 0x200, FC 0x400, CR/CS 0x10, Z 0x800, IEP 0x100.
    origin
        | (tt << 2)
        | (tf << 6)
        | tl
        | rare(0x20, 12)
        | rare(0x200, 15)
        | rare(0x400, 18)
        | rare(0x10, 21)
        | rare(0x800, 24)
        | rare(0x100, 27)
}

/// Build a random valid space (random type, origin low or near 2^64, a few mappings of
/// each size), then corrupt some of its table entries. Returns the ASCE and the
/// virtual addresses mapped.
fn built_space(g: &Guest, rng: &mut SplitMix) -> (Asce, Vec<u64>) {
    let dt = ALL_DT[(rng.next() % 4) as usize];
    let origin = if rng.one_in(2) {
        0x1_0000
    } else {
        TOP + 0x1_0000
    };
    let flags = if rng.one_in(4) { Asce::P } else { 0 };
    let mut b = SpaceBuilder::new(g.vm.storage(), dt, origin, 3, flags).unwrap();
    let bits = space_bits(dt);
    let mut virts = Vec::new();
    for _ in 0..(1 + rng.next() % 6) {
        let size = [Size4K, Size4K, Size1M, Size2G][(rng.next() % 4) as usize];
        let n = frame_bytes(size);
        let raw = match rng.next() % 3 {
            0 => rng.next() % (1 << 24),
            1 => u64::MAX - rng.next() % (1 << 32),
            _ => rng.next(),
        };
        let virt = if bits == 64 {
            raw
        } else {
            raw & ((1 << bits) - 1)
        } & !(n - 1);
        let frame = match rng.next() % 3 {
            0 => rng.next() % (1 << 20),
            1 => TOP + rng.next() % (1 << 20),
            _ => rng.next(),
        } & !(n - 1);
        let leaf = LeafFlags {
            protect: rng.one_in(4),
            iep: rng.one_in(4),
        };
        if frame.checked_add(n - 1).is_some() && b.map(virt, frame, n, size, leaf).is_ok() {
            virts.push(virt + rng.next() % n);
        }
    }
    let tables: Vec<(u64, u64)> = b.tables().to_vec();
    let asce = b.asce();
    drop(b);
    // Corrupt a few entries: flip bits or replace them.
    for _ in 0..(rng.next() % 4) {
        let (t, len) = tables[(rng.next() % tables.len() as u64) as usize];
        let at = t + (rng.next() % (len / 8)) * 8;
        let e = g.read_u64(at);
        let v = if rng.one_in(2) {
            e ^ (1 << (rng.next() % 64))
        } else {
            entry_like(rng)
        };
        g.write_u64(at, v);
    }
    (asce, virts)
}

fn run_chaos_case(c: &ChaosCase) -> Result<(), TestCaseError> {
    let facs: Vec<u32> = [(1, 8), (2, 78), (4, 130)]
        .iter()
        .filter(|x| c.facs & x.0 != 0)
        .map(|x| x.1)
        .collect();
    let mut g = Guest::with_slots(&SLOTS_C, &facs);
    let mut rng = SplitMix(c.seed);
    let structured = !rng.one_in(4);
    let mut fill = vec![0u8; 0x1_0000];
    for base in [0, TOP] {
        for chunk in fill.chunks_mut(8) {
            let v = if structured {
                entry_like(&mut rng)
            } else {
                rng.plausible()
            };
            chunk.copy_from_slice(&v.to_be_bytes());
        }
        g.write(base, &fill);
    }
    if rng.one_in(2) {
        g.vm.enable_keys();
        for _ in 0..16 {
            let a = if rng.one_in(2) {
                rng.next() % (1 << 20)
            } else {
                TOP + rng.next() % (1 << 20)
            };
            g.vm.set_storage_key(
                AbsoluteAddress(a),
                s390_gaccess::keys::StorageKey(rng.next() as u8),
            )
            .unwrap();
        }
    }
    // Registers: PSW bits from the case (DAT, AS, EA/BA and noise), CRs and ARs from
    // the generator.
    g.vcpu.psw.mask = c.psw_bits;
    for cr in [1, 7, 13, 2, 5] {
        g.vcpu.cr[cr] = rng.plausible();
    }
    g.vcpu.cr[0] = rng.next();
    g.vcpu.cr[8] = rng.next();
    for ar in 0..16 {
        g.vcpu.ar[ar] = match rng.next() % 4 {
            0 => 0,
            1 => 1,
            2 => (rng.next() as u32) & 0x01FF_FFFF,
            _ => rng.next() as u32,
        };
    }
    let mut virts = Vec::new();
    if structured {
        // A real space, an AR chain to it (perturbed), and registers that use them.
        let (asce, v) = built_space(&g, &mut rng);
        virts = v;
        for cr in [1, 7, 13] {
            if !rng.one_in(4) {
                g.vcpu.cr[cr] = asce.0;
            }
        }
        let w0_extra = [0, ALE_FETCH_ONLY, 1 << 56, 1 << 63][(rng.next() % 4) as usize];
        let ar = if rng.one_in(4) {
            (rng.next() % 16) as usize
        } else {
            c.ar as usize % 16
        };
        install_art(&mut g, ar, asce.0, w0_extra);
        if !rng.one_in(4) {
            g.vcpu.psw.mask |= Psw::DAT;
        }
        g.vcpu.ar[(ar + 1) % 16] = ART_ALET;
        g.vcpu.cr[8] = (rng.next() % 64) << 16;
        if rng.one_in(2) {
            // Perturb one of DUCT/ALD/ALE/ASTE.
            let at = [0x3010, 0x4020, 0x4028, 0x5000, 0x5008, 0x5010][(rng.next() % 6) as usize];
            let e = g.read_u64(at);
            g.write_u64(at, e ^ (1 << (rng.next() % 64)));
        }
        if rng.one_in(2) {
            g.vcpu.cr[0] |= cr0::EDAT;
        }
    }
    g.vcpu.prefix = c.prefix;
    let ga = match c.addr_sel {
        0 | 3 if !virts.is_empty() => virts[(c.addr % virts.len() as u64) as usize],
        0 => c.addr,
        1 => u64::MAX - (c.addr % 0x2_0000),
        2 => c.addr % 0x2_0000,
        _ => c.addr & 0xFFFF_FFFF,
    };
    let mode = [Fetch, Store, InstructionFetch][c.mode as usize];
    let key = AccessKey::new(c.key).unwrap();
    let psw_as = (c.psw_bits >> 46) & 3;

    let t1 = translate_address_with_key(&g.vm, &g.vcpu, ga, c.ar, mode, key);
    let rep = translate(&g.vm, &g.vcpu, ga, c.ar, mode, key);
    prop_assert_eq!(t1.map(|a| a.0), rep.result.map(|(a, _)| a.0));
    if let Ok(a) = t1 {
        prop_assert!(g.vm.storage().in_memory(a));
    }
    if mode == InstructionFetch {
        return Ok(());
    }
    check_record(&t1.map(|_| ()), psw_as, c.ar, mode)?;
    let r = check_logical(&g.vm, &g.vcpu, ga, c.ar, c.len, mode, key);
    check_record(&r, psw_as, c.ar, mode)?;
    let len = (c.len % 512) as usize + 1;
    let mut buf = vec![0xA5u8; len];
    let r = match mode {
        Store => access_logical(&g.vm, &g.vcpu, ga, c.ar, Buffer::Store(&buf), key),
        _ => access_logical(&g.vm, &g.vcpu, ga, c.ar, Buffer::Fetch(&mut buf), key),
    };
    check_record(&r, psw_as, c.ar, mode)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    /// §5.1-§5.7, §11 item 1: random tables, registers, addresses and origins (near
    /// 2^64 too) never panic or overflow; every outcome is a memop code with a record
    /// shaped as §9.3 says, and `translate` agrees with `translate_address_with_key`.
    #[test]
    fn chaos_never_panics(c in chaos_case()) {
        run_chaos_case(&c)?;
    }
}

/// A deeper variant of (c): AR mode and DAT on always, so AR translation and the walk
/// run on random structures every time.
#[test]
fn chaos_ar_mode_dat_on() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: CASES,
        ..ProptestConfig::default()
    });
    runner
        .run(&chaos_case(), |mut c| {
            c.psw_bits = (c.psw_bits & !(3 << 46)) | Psw::DAT | (1 << 46);
            c.ar %= 16;
            run_chaos_case(&c)
        })
        .unwrap();
}

/// The frames whose keys a walk may touch here: every frame of both memslots.
fn all_keys(g: &Guest) -> Vec<u8> {
    SLOTS_C
        .iter()
        .flat_map(|&(start, size)| (0..size / 0x1000).map(move |i| start + i * 0x1000))
        .map(|a| g.vm.storage().key(AbsoluteAddress(a)).unwrap().0)
        .collect()
}

/// (d) §10.3, §11 item 15: `walk_referencing` (a call-free walk over frames that
/// already carry R, and the general walk when it meets anything else: an unmarked
/// frame, an entry or a frame in the second memslot) equals the pure `walk` followed
/// by setting R on each traced entry's frame: result and every key afterwards, for
/// the first walk (frames unmarked) and a repeat (frames marked), on random tables
/// spread over two memslots, random contexts and random prefixes.
fn run_referencing_case(c: &ChaosCase) -> Result<(), TestCaseError> {
    let g = Guest::with_slots(&SLOTS_C, &[8, 78, 130]);
    let mut rng = SplitMix(c.seed);
    let (asce, virts) = built_space(&g, &mut rng);
    g.vm.enable_keys();
    for _ in 0..(rng.next() % 8) {
        let a = [0, TOP][(rng.next() % 2) as usize] + rng.next() % (1 << 20);
        g.vm.set_storage_key(
            AbsoluteAddress(a),
            s390_gaccess::keys::StorageKey(rng.next() as u8 & 0xFE),
        )
        .unwrap();
    }
    let mode = [Fetch, Store, InstructionFetch][c.mode as usize];
    let ctx = WalkContext::new(asce, mode)
        .with_edat(c.facs & 1 != 0, c.facs & 3 == 3)
        .with_iep(c.facs & 4 != 0)
        .with_prefix(c.prefix as u64);
    let v = match c.addr_sel {
        0 | 3 if !virts.is_empty() => virts[(c.addr % virts.len() as u64) as usize],
        _ => c.addr,
    };
    for round in 0..2 {
        let before = all_keys(&g);
        let pure = walk::walk(g.vm.storage(), v, &ctx);
        prop_assert_eq!(all_keys(&g), before.clone(), "the pure walk changed a key");
        let got = walk::walk_referencing(g.vm.storage(), v, &ctx);
        prop_assert_eq!(got, pure.result, "round {}", round);
        let mut want = before;
        for e in pure.trace.entries() {
            let a = e.address.0;
            let (start, _) = SLOTS_C.iter().find(|s| a.wrapping_sub(s.0) < s.1).unwrap();
            let index = if *start == 0 { 0 } else { 256 } + ((a - start) >> 12) as usize;
            want[index] |= 0x04;
        }
        prop_assert_eq!(all_keys(&g), want, "round {}", round);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn walk_referencing_equals_walk_then_references(c in chaos_case()) {
        run_referencing_case(&c)?;
    }
}
