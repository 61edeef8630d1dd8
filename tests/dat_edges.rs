//! Edge cases of memory layout and address arithmetic: a 16 TiB sparse guest,
//! memslots with holes, addresses and lengths near 2^64 and near memslot ends
//! (kernel-semantics.md §4 "in memory", §5.4, §5.6 addressing, §11 item 1).

mod common;

use common::*;
use s390_gaccess::dat::builder::LeafFlags;
use s390_gaccess::dat::{Asce, TableLevel};

const TIB: u64 = 1 << 40;

/// §4, §5.6: a 16 TiB guest; tables at 12 TiB, frames at the very end of memory, a
/// region-second space (virtual addresses beyond 4 TiB), all three frame sizes.
#[test]
fn sixteen_tib_sparse_guest() {
    let end = 16 * TIB;
    let mut g = Guest::with_slots(&[(0, end)], &[8, 78]);
    let v4k = 0x0000_0FFF_FFFF_F000; // 16 TiB - 4 KiB, virtual
    let v1m = 0x0000_0ABC_0000_0000;
    let v2g = 0x0000_0DEF_8000_0000;
    let asce = g.space(RegionSecond, 12 * TIB, 3, 0, |b| {
        b.map(v4k, end - 0x1000, 0x1000, Size4K, LeafFlags::default())?;
        b.map(
            v1m,
            end - 0x10_0000,
            0x10_0000,
            Size1M,
            LeafFlags::default(),
        )?;
        b.map(
            v2g,
            end - 0x8000_0000,
            0x8000_0000,
            Size2G,
            LeafFlags::default(),
        )
    });
    g.dat_on(asce);
    assert_eq!(g.xlate(v4k | 0xFFF, Store).unwrap(), end - 1);
    assert_eq!(g.xlate(v1m | 0xF_FFFF, Store).unwrap(), end - 1);
    assert_eq!(g.xlate(v2g | 0x7FFF_FFFF, Store).unwrap(), end - 1);
    assert_eq!(g.xlate(v2g, Fetch).unwrap(), end - 0x8000_0000);
    g.store(v4k | 0xFF8, 0, &[1, 2, 3, 4, 5, 6, 7, 8], 0)
        .unwrap();
    assert_eq!(
        g.fetch(v1m | 0xF_FFF8, 0, 8, 0).unwrap(),
        [1, 2, 3, 4, 5, 6, 7, 8]
    );
    assert_eq!(
        g.fetch(v2g | 0x7FFF_FFF8, 0, 8, 0).unwrap(),
        [1, 2, 3, 4, 5, 6, 7, 8]
    );
    assert!(g.referenced(end - 0x1000) && g.changed(end - 0x1000));
    assert!(g.referenced(12 * TIB));
    // One byte beyond memory: the frame addressing check.
    g.set_entry(v4k, Page, end);
    assert_bare(g.xlate(v4k, Fetch), 0x05);
    // A page table at the very end of memory.
    g.set_entry(v4k, TableLevel::Segment, end - 0x800);
    g.write_u64(end - 8, end - 0x2000); // PX 255
    assert_eq!(g.xlate(v4k | 0x123, Fetch).unwrap(), end - 0x2000 + 0x123);
}

/// §4: "in memory" means in some memslot; tables in one slot, frames in a hole →
/// PGM 5; frames in another slot work.
#[test]
fn memslot_holes() {
    let mut g = Guest::with_slots(&[(0, 0x20_0000), (0x40_0000, 0x10_0000)], &[8, 78]);
    let asce = g.space(Segment, TABLES, 3, 0, |b| {
        b.map(0x100_0000, 0x30_0000, 0x1000, Size4K, LeafFlags::default())?; // hole
        b.map(0x100_1000, 0x40_0000, 0x1000, Size4K, LeafFlags::default())?; // slot 2
        b.map(0x100_2000, 0x4F_F000, 0x1000, Size4K, LeafFlags::default())?; // slot 2 end
        b.map(0x100_3000, 0x50_0000, 0x1000, Size4K, LeafFlags::default())?; // above
        b.map(
            0x200_0000,
            0x40_0000,
            0x10_0000,
            Size1M,
            LeafFlags::default(),
        )?;
        b.map(
            0x210_0000,
            0x20_0000,
            0x10_0000,
            Size1M,
            LeafFlags::default(),
        )
    });
    g.dat_on(asce);
    assert_bare(g.xlate(0x100_0000, Fetch), 0x05);
    assert_eq!(g.xlate(0x100_1008, Fetch).unwrap(), 0x40_0008);
    assert_eq!(g.xlate(0x100_2FFF, Store).unwrap(), 0x4F_FFFF);
    assert_bare(g.xlate(0x100_3000, Fetch), 0x05);
    assert_eq!(g.xlate(0x20F_FFFF, Store).unwrap(), 0x4F_FFFF);
    assert_bare(g.xlate(0x210_0000, Fetch), 0x05);
    // A two-page access ending in the hole moves nothing (§5.4).
    assert_bare(g.store(0x100_2FF0, 0, &[9; 32], 0), 0x05);
    assert_eq!(g.read(0x4F_FFF0, 16), vec![0; 16]);
    // A page table in the hole.
    g.set_entry(0x100_1000, TableLevel::Segment, 0x30_0000);
    assert_bare(g.xlate(0x100_1000, Fetch), 0x05);
    // DAT off: real addresses in the hole.
    g.vcpu.psw.mask &= !s390_gaccess::vcpu::Psw::DAT;
    assert_bare(g.xlate(0x20_0000, Fetch), 0x05);
    assert_eq!(g.xlate(0x1F_FFFF, Fetch).unwrap(), 0x1F_FFFF);
    assert_bare(g.check(0x1F_FFF0, 0, 32, Fetch, 0), 0x05);
    assert_bare(g.store(0x1F_FFF0, 0, &[9; 32], 0), 0x05);
    assert_eq!(g.read(0x1F_FFF0, 16), vec![0; 16]);
}

/// §5.6, §11 item 1: a table whose origin is in memory but whose indexed entry lies
/// beyond the end of the memslot → PGM 5; the last doubleword of the slot is fine.
#[test]
fn table_entry_at_memslot_end() {
    let mut g = Guest::with_slots(&[(0, 0x10_1000)], &[]);
    // Segment table at 0x10_0000 of which only the first 4 KiB are in memory.
    g.write_u64(0x10_0000 + 511 * 8, 0x8_0000); // SX 511: PTO 0x8_0000
    g.write_u64(0x8_0000, 0x9_0000); // PX 0
    g.dat_on(Asce(0x10_0000 | 3));
    assert_eq!(g.xlate(511 << 20, Fetch).unwrap(), 0x9_0000);
    assert_bare(g.xlate(512 << 20, Fetch), 0x05);
    assert_bare(g.xlate(0x7FFF_FFFF, Fetch), 0x05);
}

/// §5.4, §5.6: translating the last addresses below 2^64 through a region-first
/// space; a fetch wrapping past 2^64 into an unmapped page fails there.
#[test]
fn addresses_near_2_64() {
    let mut g = Guest::new();
    let asce = g.space(RegionFirst, TABLES, 3, 0, |b| {
        b.map(
            0xFFFF_FFFF_FFFF_E000,
            0x80_0000,
            0x2000,
            Size4K,
            LeafFlags::default(),
        )
    });
    g.dat_on(asce);
    assert_eq!(g.xlate(u64::MAX, Fetch).unwrap(), 0x80_1FFF);
    assert_eq!(g.xlate(0xFFFF_FFFF_FFFF_E000, Store).unwrap(), 0x80_0000);
    assert_eq!(g.fetch(u64::MAX - 7, 0, 8, 0).unwrap(), [0; 8]);
    // The wrapped fragment at 0: RFX 0's entry is invalid.
    assert_pgm(g.fetch(u64::MAX - 7, 0, 16, 0), 0x39, 0x800, 0);
    assert_pgm(g.check(u64::MAX, 3, 2, Store, 0), 0x39, 0x400, 3);
    // The TEID address of a failing top page keeps all of bits 0-51.
    g.edit_entry(u64::MAX, Page, 0x400, 0);
    assert_pgm(g.xlate(u64::MAX, Fetch), 0x11, 0xFFFF_FFFF_FFFF_F800, 0);
}

/// §5.4: CHECK_ONLY lengths near 2^64 — the fragment loop neither overflows nor runs
/// away: it stops at the first failing fragment (after wrapping past 2^64).
#[test]
fn lengths_near_2_64() {
    let top = 0xFFFF_FFFF_FFFF_F000;
    let mut g = Guest::with_slots(&[(0, MEM), (top, 0x1000)], &[]);
    // DAT off: 0 .. MEM is memory, then a hole.
    assert_bare(g.check(0, 0, u64::MAX, Fetch, 0), 0x05);
    assert_bare(g.check(top, 0, u64::MAX, Store, 0), 0x05);
    assert!(g.check(top, 0, 0x1000 + MEM, Fetch, 0).is_ok());
    assert!(g.check(0x123, 0, 0, Fetch, 0).is_ok());
    // DAT on: the top page and pages 0-2 mapped; the walk fails at page 3.
    let asce = g.space(RegionFirst, TABLES, 3, 0, |b| {
        b.map(top, 0x80_0000, 0x1000, Size4K, LeafFlags::default())?;
        b.map(0, 0x90_0000, 0x3000, Size4K, LeafFlags::default())?;
        b.map(0x7FFF_F000, 0xA0_0000, 0x1000, Size4K, LeafFlags::default())
    });
    g.dat_on(asce);
    assert_pgm(g.check(top, 0, u64::MAX, Fetch, 0), 0x11, 0x3800, 0);
    assert_pgm(
        g.check(u64::MAX, 0, u64::MAX - 1, Store, 0),
        0x11,
        0x3400,
        0,
    );
    // 31-bit mode: the wrap at 2^31 brings the fragments back to page 0.
    g.vcpu.psw.mask &= !s390_gaccess::vcpu::Psw::EA;
    assert_pgm(g.check(0x7FFF_F000, 0, u64::MAX, Fetch, 0), 0x11, 0x3800, 0);
    assert_pgm(
        g.check(0xFFFF_FFFF_7FFF_F000, 0, u64::MAX, Store, 0),
        0x11,
        0x3400,
        0,
    );
}

/// §5.4, §5.3.1: AR translation structures near the end of a memslot.
#[test]
fn art_structure_at_memslot_end() {
    let mut g = Guest::with_slots(&[(0, 0x6000)], &[]);
    g.dat_on(Asce(0x20));
    install_art(&mut g, 1, 0x20, 0);
    g.vcpu.psw.mask |= AS_AR;
    assert_eq!(g.xlate_ar(0x10, 1, Fetch).unwrap(), 0x10);
    // Move the ASTE to the last 24 bytes below 0x6000 ... (ASTEO*64 = 0x5FC0).
    let w1 = g.read_u64(0x4028) & 0xFFFF_FFFF;
    g.write_u64(0x4028, ((0x5FC0 / 64) << 38) | w1);
    g.write_u64(0x5FC0, 0);
    g.write_u64(0x5FC8, 0x20);
    g.write_u64(0x5FD0, 0x1234_5678);
    assert_eq!(g.xlate_ar(0x10, 1, Fetch).unwrap(), 0x10);
    // ... and just beyond.
    g.write_u64(0x4028, ((0x6000 / 64) << 38) | w1);
    assert_bare(g.xlate_ar(0x10, 1, Fetch), 0x05);
}
