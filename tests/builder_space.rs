//! `SpaceBuilder`: table layout, entry formats (as §5.6 defines them), edits and the
//! errors it reports.

mod common;

use common::*;
use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::dat::builder::{BuildError, LeafFlags, SpaceBuilder, entry_address};
use s390_gaccess::dat::{Asce, TableLevel};
use s390_gaccess::storage::GuestStorage;

fn storage() -> GuestStorage {
    GuestStorage::new(&[(0, MEM)]).unwrap()
}

fn rd(s: &GuestStorage, a: u64) -> u64 {
    s.read_u64(AbsoluteAddress(a)).unwrap()
}

const NONE: LeafFlags = LeafFlags {
    protect: false,
    iep: false,
};

/// A new top table is 16 KiB of invalid entries of its type with TL 3 (§5.6 field
/// layouts: I 0x20, TT << 2, TL); the ASCE is origin | DT << 2 | TL with only the G,
/// P, S, X and R flags kept.
#[test]
fn new_top_table_and_asce() {
    for (dt, empty) in [
        (RegionFirst, 0x2F),
        (RegionSecond, 0x2B),
        (RegionThird, 0x27),
        (Segment, 0x20),
    ] {
        let s = storage();
        let b = SpaceBuilder::new(&s, dt, 0x20_0000, 2, 0xFFFF_FFFF_FFFF_FFFF).unwrap();
        assert_eq!(b.asce().0, 0x20_0000 | 0x3E0 | ((dt as u64) << 2) | 2);
        assert_eq!(b.tables(), &[(0x20_0000, 0x4000)]);
        assert_eq!(b.end(), 0x20_4000);
        for i in [0u64, 1, 1000, 2047] {
            assert_eq!(rd(&s, 0x20_0000 + i * 8), empty, "{dt:?} entry {i}");
        }
        assert_eq!(rd(&s, 0x20_4000), 0, "nothing written past the table");
    }
    let s = storage();
    let b = SpaceBuilder::new(&s, Segment, 0x1000, 7, 0).unwrap();
    assert_eq!(b.asce(), Asce(0x1000 | 3));
}

/// 4 KiB mapping in a region-first space: one table per level, 16 KiB region and
/// segment tables at 4 KiB alignment, 2 KiB page tables; entries as §5.6 lays them out.
#[test]
fn map_4k_layout_and_entries() {
    let s = storage();
    let mut b = SpaceBuilder::new(&s, RegionFirst, TABLES, 3, 0).unwrap();
    b.map(V_RF & !0xFFF, FRAME, 0x1000, Size4K, NONE).unwrap();
    assert_eq!(
        b.tables(),
        &[
            (0x100000, 0x4000),
            (0x104000, 0x4000),
            (0x108000, 0x4000),
            (0x10C000, 0x4000),
            (0x110000, 0x800)
        ]
    );
    assert_eq!(rd(&s, 0x100028), 0x10400F); // RTO, TT 3, TF 0, TL 3
    assert_eq!(rd(&s, 0x104030), 0x10800B); // TT 2
    assert_eq!(rd(&s, 0x108038), 0x10C007); // TT 1
    assert_eq!(rd(&s, 0x10C040), 0x110000); // PTO
    assert_eq!(rd(&s, 0x110048), FRAME); // PFRA
    assert_eq!(rd(&s, 0x110040), 0x400, "other PTEs are invalid");
    // A second page table: 2 KiB after the first; the next region table 4 KiB aligned.
    b.map((V_RF & !0xFFF) + 0x10_0000, FRAME, 0x1000, Size4K, NONE)
        .unwrap();
    assert_eq!(*b.tables().last().unwrap(), (0x110800, 0x800));
    b.map(0, FRAME, 0x1000, Size4K, NONE).unwrap();
    assert_eq!(
        &b.tables()[6..],
        &[
            (0x111000, 0x4000),
            (0x115000, 0x4000),
            (0x119000, 0x4000),
            (0x11D000, 0x800)
        ]
    );
    assert_eq!(b.end(), 0x11D800);
}

/// Leaf flags: P (bit 54) and IEP (bit 55) on 4 KiB, 1 MiB and 2 GiB leaves; FC (bit
/// 53) on large leaves; TT 1 on the region-third leaf.
#[test]
fn leaf_entries_with_flags() {
    let s = GuestStorage::new(&[(0, MEM), (0x8000_0000, 0x1000)]).unwrap();
    let mut b = SpaceBuilder::new(&s, RegionThird, TABLES, 3, 0).unwrap();
    let all = LeafFlags {
        protect: true,
        iep: true,
    };
    b.map(0x1000, 0x5000, 0x1000, Size4K, all).unwrap();
    b.map(0x10_0000, 0x30_0000, 0x10_0000, Size1M, all).unwrap();
    b.map(0x8000_0000, 0x8000_0000, 0x8000_0000, Size2G, all)
        .unwrap();
    let asce = b.asce();
    let e = |v, l| rd(&s, entry_address(&s, asce, v, l).unwrap().0);
    assert_eq!(e(0x1000, TableLevel::Page), 0x5000 | 0x200 | 0x100);
    assert_eq!(
        e(0x10_0000, TableLevel::Segment),
        0x30_0000 | 0x400 | 0x200 | 0x100
    );
    assert_eq!(
        e(0x8000_0000, TableLevel::RegionThird),
        0x8000_0000 | 0x400 | 0x200 | 0x100 | 0x4
    );
    let p = LeafFlags {
        protect: true,
        iep: false,
    };
    b.map(0x2000, 0x6000, 0x1000, Size4K, p).unwrap();
    assert_eq!(e(0x2000, TableLevel::Page), 0x6000 | 0x200);
}

/// Mapping a range writes every page; mapping an existing page again replaces it;
/// size 0 does nothing.
#[test]
fn map_ranges_and_remap() {
    let mut g = Guest::new();
    let asce = g.space(Segment, TABLES, 3, 0, |b| {
        b.map(0xF_E000, 0x40_0000, 0x4000, Size4K, NONE)?; // crosses a segment
        b.map(0xF_E000, 0x50_0000, 0x1000, Size4K, NONE)?;
        b.map(0x7000_0000, 0x60_0000, 0, Size4K, NONE)
    });
    g.dat_on(asce);
    assert_eq!(g.xlate(0xF_E000, Fetch).unwrap(), 0x50_0000);
    assert_eq!(g.xlate(0xF_F000, Fetch).unwrap(), 0x40_1000);
    assert_eq!(g.xlate(0x10_0000, Fetch).unwrap(), 0x40_2000);
    assert_eq!(g.xlate(0x10_1FFF, Fetch).unwrap(), 0x40_3FFF);
    assert_pgm(g.xlate(0x7000_0000, Fetch), 0x10, 0x7000_0800, 0);
}

/// Every designation type with every frame size it can hold translates through the
/// walk.
#[test]
fn map_all_types_and_sizes() {
    for dt in ALL_DT {
        let mut g = Guest::with_slots(&[(0, MEM), (0x8000_0000, 0x1000)], &[8, 78]);
        let v = 0x4000_0000; // fits every type (RTX 0, SX01 2)
        let asce = g.space(dt, TABLES, 3, 0, |b| {
            b.map(v, 0x40_0000, 0x1000, Size4K, NONE)?;
            b.map(v + 0x10_0000, 0x50_0000, 0x10_0000, Size1M, NONE)?;
            if dt != Segment {
                b.map(0x8000_0000, 0x8000_0000, 0x8000_0000, Size2G, NONE)?;
            }
            Ok(())
        });
        g.dat_on(asce);
        assert_eq!(g.xlate(v + 0x123, Fetch).unwrap(), 0x40_0123, "{dt:?}");
        assert_eq!(g.xlate(v + 0x1F_FFFF, Fetch).unwrap(), 0x5F_FFFF, "{dt:?}");
        if dt != Segment {
            assert_eq!(g.xlate(0x8000_0FFF, Fetch).unwrap(), 0x8000_0FFF, "{dt:?}");
        }
    }
}

/// Builder errors: origin alignment, tables outside memory, misaligned or overflowing
/// mappings, addresses outside the designated space, frames above the top table.
#[test]
fn errors() {
    let s = storage();
    assert_eq!(
        SpaceBuilder::new(&s, Segment, 0x800, 3, 0).unwrap_err(),
        BuildError::UnalignedOrigin(0x800)
    );
    assert!(matches!(
        SpaceBuilder::new(&s, Segment, MEM - 0x1000, 3, 0).unwrap_err(),
        BuildError::TableOutsideMemory { addr, size: 0x4000, .. } if addr == MEM - 0x1000
    ));
    let mut b = SpaceBuilder::new(&s, Segment, MEM - 0x4000, 3, 0).unwrap();
    assert!(matches!(
        b.map(0, 0, 0x1000, Size4K, NONE).unwrap_err(),
        BuildError::TableOutsideMemory { size: 0x800, .. }
    ));
    let mut b = SpaceBuilder::new(&s, Segment, TABLES, 1, 0).unwrap();
    for (v, a, n, f) in [
        (0x800, 0, 0x1000, Size4K),
        (0, 0x800, 0x1000, Size4K),
        (0, 0, 0x800, Size4K),
        (0x1000, 0, 0x10_0000, Size1M),
        (0, 0x8000_1000, 0x8000_0000, Size2G),
    ] {
        assert!(matches!(
            b.map(v, a, n, f, NONE).unwrap_err(),
            BuildError::Unaligned { .. }
        ));
    }
    assert!(matches!(
        b.map(0xFFFF_FFFF_FFFF_F000, 0, 0x2000, Size4K, NONE)
            .unwrap_err(),
        BuildError::Overflow { .. }
    ));
    // TL 1: SX01 up to 1, so virtual addresses below 2^30.
    assert!(b.map(0x3FFF_F000, 0, 0x1000, Size4K, NONE).is_ok());
    assert!(matches!(
        b.map(0x4000_0000, 0, 0x1000, Size4K, NONE).unwrap_err(),
        BuildError::OutsideSpace {
            virt: 0x4000_0000,
            ..
        }
    ));
    assert!(matches!(
        b.map(1 << 31, 0, 0x1000, Size4K, NONE).unwrap_err(),
        BuildError::OutsideSpace { .. }
    ));
    assert!(matches!(
        b.map(0, 0, 0x8000_0000, Size2G, NONE).unwrap_err(),
        BuildError::FrameAboveTop { .. }
    ));
    let mut b = SpaceBuilder::new(&s, RegionThird, 0x20_0000, 3, 0).unwrap();
    assert!(matches!(
        b.map(1 << 42, 0, 0x1000, Size4K, NONE).unwrap_err(),
        BuildError::OutsideSpace { .. }
    ));
    let mut b = SpaceBuilder::new(&s, RegionSecond, 0x30_0000, 0, 0).unwrap();
    assert!(b.map((1 << 51) - 0x1000, 0, 0x1000, Size4K, NONE).is_ok());
    assert!(matches!(
        b.map(1 << 51, 0, 0x1000, Size4K, NONE).unwrap_err(),
        BuildError::OutsideSpace { .. }
    ));
    assert!(matches!(
        b.map(1 << 53, 0, 0x1000, Size4K, NONE).unwrap_err(),
        BuildError::OutsideSpace { .. }
    ));
}

/// Builder conflicts: a 4 KiB page under a 1 MiB frame, a 1 MiB frame over a page
/// table, a 2 GiB frame over a segment table (and a page under a 2 GiB frame).
#[test]
fn conflicts() {
    let s = storage();
    let mut b = SpaceBuilder::new(&s, RegionThird, TABLES, 3, 0).unwrap();
    b.map(0x10_0000, 0x40_0000, 0x10_0000, Size1M, NONE)
        .unwrap();
    assert!(matches!(
        b.map(0x10_1000, 0, 0x1000, Size4K, NONE).unwrap_err(),
        BuildError::Conflict {
            existing: "large frame",
            ..
        }
    ));
    b.map(0x20_0000, 0x40_0000, 0x1000, Size4K, NONE).unwrap();
    assert!(matches!(
        b.map(0x20_0000, 0x40_0000, 0x10_0000, Size1M, NONE)
            .unwrap_err(),
        BuildError::Conflict {
            existing: "page table",
            ..
        }
    ));
    assert!(matches!(
        b.map(0, 0, 0x8000_0000, Size2G, NONE).unwrap_err(),
        BuildError::Conflict {
            existing: "segment table",
            ..
        }
    ));
    b.map(0x8000_0000, 0, 0x8000_0000, Size2G, NONE).unwrap();
    assert!(matches!(
        b.map(0x8000_1000, 0, 0x1000, Size4K, NONE).unwrap_err(),
        BuildError::Conflict { .. }
    ));
    // A 1 MiB frame may replace a 1 MiB frame.
    b.map(0x10_0000, 0x50_0000, 0x10_0000, Size1M, NONE)
        .unwrap();
}

/// `entry_address`, `edit`, `replace`, `invalidate`, and the reasons an entry cannot
/// be reached.
#[test]
fn edits_and_entry_addresses() {
    let s = storage();
    let mut b = SpaceBuilder::new(&s, RegionSecond, TABLES, 3, 0).unwrap();
    b.map(V_RS & !0xFFF, FRAME, 0x1000, Size4K, NONE).unwrap();
    b.map(0x10_0000, 0x40_0000, 0x10_0000, Size1M, NONE)
        .unwrap();
    let ea = |l| b.entry_address(V_RS, l).map(|a| a.0);
    assert_eq!(ea(TableLevel::RegionSecond), Ok(0x100030));
    assert_eq!(ea(TableLevel::RegionThird), Ok(0x104038));
    assert_eq!(ea(TableLevel::Segment), Ok(0x108040));
    assert_eq!(ea(TableLevel::Page), Ok(0x10C048));
    assert!(matches!(
        ea(TableLevel::RegionFirst),
        Err(BuildError::Unreachable { .. })
    ));
    assert!(matches!(
        b.entry_address(0x10_0000, TableLevel::Page),
        Err(BuildError::Unreachable { .. })
    ));
    assert!(matches!(
        b.entry_address(1 << 50, TableLevel::Segment),
        Err(BuildError::Unreachable { .. })
    ));
    assert!(entry_address(&s, Asce(0x20), 0, TableLevel::Segment).is_err());
    assert!(entry_address(&s, Asce(0x4000_0000 | 3), 0, TableLevel::Page).is_err());
    b.edit(V_RS, TableLevel::Page, 0x200, 0).unwrap();
    assert_eq!(rd(&s, 0x10C048), FRAME | 0x200);
    b.edit(V_RS, TableLevel::Page, 0x100, 0x200).unwrap();
    assert_eq!(rd(&s, 0x10C048), FRAME | 0x100);
    b.replace(V_RS, TableLevel::Segment, 0x12_3800).unwrap();
    assert_eq!(rd(&s, 0x108040), 0x12_3800);
    b.invalidate(V_RS, TableLevel::Segment).unwrap();
    assert_eq!(rd(&s, 0x108040), 0x12_3820);
    b.invalidate(V_RS, TableLevel::RegionThird).unwrap();
    assert_eq!(rd(&s, 0x104038) & 0x20, 0x20);
    assert!(matches!(
        b.entry_address(V_RS, TableLevel::Segment),
        Err(BuildError::Unreachable { .. })
    ));
}
