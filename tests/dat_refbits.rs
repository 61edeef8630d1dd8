//! Reference and change bits set by translation and data movement (kernel-semantics.md
//! §10.3, §11 item 15, §13.1 Q4). ART structure frames: see translate_art.rs.
//!
//! Standard region-first guest: tables in frames 0x100000, 0x104000, 0x108000,
//! 0x10C000 and 0x110000 (page table), V_RF → frame 0x80_0000.

mod common;

use common::*;
use s390_gaccess::dat::TableLevel;
use s390_gaccess::dat::builder::LeafFlags;

const TABLE_FRAMES: [u64; 5] = [0x100000, 0x104000, 0x108000, 0x10C000, 0x110000];

fn refs(g: &Guest) -> Vec<bool> {
    TABLE_FRAMES.iter().map(|&f| g.referenced(f)).collect()
}

fn assert_no_change_bits(g: &Guest) {
    for f in TABLE_FRAMES {
        assert!(!g.changed(f), "{f:#x}");
    }
}

/// §10.3: every frame holding a table entry the walk read gets R (not C); a fetch
/// sets R on the data frame, a store R and C.
#[test]
fn s10_3_successful_walk_and_access() {
    let g = Guest::standard(RegionFirst);
    assert_eq!(refs(&g), [false; 5]);
    assert_eq!(g.fetch(V_RF, 0, 4, 0).unwrap(), [0; 4]);
    assert_eq!(refs(&g), [true; 5]);
    assert_no_change_bits(&g);
    assert!(g.referenced(FRAME) && !g.changed(FRAME));
    g.store(V_RF, 0, &[1], 0).unwrap();
    assert!(g.referenced(FRAME) && g.changed(FRAME));
    assert_no_change_bits(&g);
}

/// §10.3: a failing walk sets R on the tables read up to the failure only.
#[test]
fn s10_3_failing_walk_references_up_to_failure() {
    let g = Guest::standard(RegionFirst);
    g.edit_entry(V_RF, TableLevel::Segment, 0x20, 0);
    assert_pgm(g.fetch(V_RF, 0, 1, 0), 0x10, 0x00A0_1803_8080_9800, 0);
    assert_eq!(refs(&g), [true, true, true, true, false]);
    assert!(!g.referenced(FRAME));
    // A bad table type at the region-second level.
    let g = Guest::standard(RegionFirst);
    g.edit_entry(V_RF, TableLevel::RegionSecond, 0, 0xC);
    assert_bare(g.store(V_RF, 0, &[1], 0), 0x12);
    assert_eq!(refs(&g), [true, true, false, false, false]);
    // Step-B failures read nothing.
    let g = Guest::standard(RegionSecond);
    assert_pgm(g.xlate(V_RF, Fetch), 0x38, 0x00A0_1803_8080_9800, 0);
    assert_eq!(refs(&g), [false; 5]);
}

/// §10.3: an entry outside memory (PGM 5) leaves R on the earlier tables.
#[test]
fn s10_3_entry_addressing_failure() {
    let g = Guest::standard(RegionFirst);
    g.set_entry(V_RF, TableLevel::RegionThird, 0x4000_0000 | 0x7);
    assert_bare(g.check(V_RF, 0, 1, Fetch, 0), 0x05);
    assert_eq!(refs(&g), [true, true, true, false, false]);
}

/// §10.3, §5.9: CHECK_ONLY sets R on the tables but touches no data frame.
#[test]
fn s10_3_check_only() {
    let g = Guest::standard(RegionFirst);
    g.check(V_RF, 0, 8, Store, 0).unwrap();
    assert_eq!(refs(&g), [true; 5]);
    assert!(!g.referenced(FRAME) && !g.changed(FRAME));
    // Also the translate() report.
    let g = Guest::standard(RegionFirst);
    let _ = g.report(V_RF, Store);
    assert_eq!(refs(&g), [true; 5]);
    assert!(!g.referenced(FRAME));
}

/// §10.3, §11 item 8: a translation-phase failure moves nothing: the data frames of
/// earlier pages keep their bits.
#[test]
fn s10_3_translation_failure_no_data_bits() {
    let mut g = Guest::new();
    let asce = g.space(Segment, TABLES, 3, 0, |b| {
        b.map(0x80_9000, 0x80_0000, 0x1000, Size4K, LeafFlags::default())?;
        b.map(
            0x80_A000,
            0x90_0000,
            0x1000,
            Size4K,
            LeafFlags {
                protect: true,
                iep: false,
            },
        )
    });
    g.dat_on(asce);
    assert_pgm(g.store(0x80_9F00, 0, &[1; 0x200], 0), 0x04, 0x0080_A404, 0);
    assert!(!g.referenced(0x80_0000) && !g.changed(0x80_0000));
    assert!(g.referenced(TABLES) && g.referenced(TABLES + 0x4000));
}

/// §10.3, §13.1 Q4: a key-refused page keeps R and C; earlier pages of the memop got
/// R (fetch) or R and C (store).
#[test]
fn s10_3_key_refused_page_unchanged() {
    let mut g = Guest::new();
    let asce = g.space(Segment, TABLES, 3, 0, |b| {
        b.map(0x80_9000, 0x80_0000, 0x1000, Size4K, LeafFlags::default())?;
        b.map(0x80_A000, 0x90_0000, 0x1000, Size4K, LeafFlags::default())
    });
    g.dat_on(asce);
    g.set_skey(0x80_0000, 0x50);
    g.set_skey(0x90_0000, 0x38);
    assert_pgm(g.store(0x80_9F00, 0, &[1; 0x200], 5), 0x04, 0x0080_A400, 0);
    assert!(g.referenced(0x80_0000) && g.changed(0x80_0000));
    assert!(!g.referenced(0x90_0000) && !g.changed(0x90_0000));
    g.clear_rc(0x80_0000, 0x1000);
    assert_pgm(g.fetch(0x80_9F00, 0, 0x200, 5), 0x04, 0x0080_A808, 0);
    assert!(g.referenced(0x80_0000) && !g.changed(0x80_0000));
    assert!(!g.referenced(0x90_0000));
    // CHECK_ONLY with a key failure: no data-frame bits at all.
    g.clear_rc(0x80_0000, 0x1000);
    assert_pgm(g.check(0x80_9F00, 0, 0x200, Fetch, 5), 0x04, 0x0080_A808, 0);
    assert!(!g.referenced(0x80_0000));
}

/// §10.3, §5.7: DAT off, the bits land on the prefixed frame.
#[test]
fn s10_3_dat_off_prefixed_frame() {
    let mut g = Guest::new();
    g.vcpu.prefix = 0x4_0000;
    g.store(0x10, 0, &[1], 0).unwrap();
    assert!(g.referenced(0x4_0000) && g.changed(0x4_0000));
    assert!(!g.referenced(0) && !g.changed(0));
    g.fetch(0x4_1000, 0, 1, 0).unwrap();
    assert!(g.referenced(0x1000) && !g.changed(0x1000));
}

/// §10.3: 1 MiB and 2 GiB frames — R/C on the 4 KiB frame accessed inside them.
#[test]
fn s10_3_large_frames() {
    let g = Guest::standard(Segment);
    g.set_entry(V_SEG, TableLevel::Segment, 0x100_0000 | 0x400);
    g.store(V_SEG, 0, &[1], 0).unwrap();
    assert!(g.referenced(0x100_9000) && g.changed(0x100_9000));
    assert!(!g.referenced(0x100_0000) && !g.referenced(0x100_A000));
    assert!(g.referenced(TABLES));
    assert!(!g.referenced(TABLES + 0x4000), "the page table is not read");
}
