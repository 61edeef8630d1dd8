//! The DAT walk, rule by rule (kernel-semantics.md §5.6, §11 items 1, 3-7).
//!
//! Layout of the standard guests (tests/common): tables from 0x10_0000 upward, 16 KiB
//! per region/segment table and 2 KiB per page table, in the order the walk needs them;
//! each standard address (RFX=5, RSX=6, RTX=7, SX=8, PX=9) maps to frame 0x80_0000.
//!
//! | dt | tables | entry addresses read |
//! |---|---|---|
//! | region-first | RFT 100000, RST 104000, RTT 108000, ST 10C000, PT 110000 | 100028, 104030, 108038, 10C040, 110048 |
//! | region-second | RST 100000, RTT 104000, ST 108000, PT 10C000 | 100030, 104038, 108040, 10C048 |
//! | region-third | RTT 100000, ST 104000, PT 108000 | 100038, 104040, 108048 |
//! | segment | ST 100000, PT 104000 | 100040, 104048 |
//!
//! TEIDs for translation exceptions (§9.2, §9.3): page address | FSI (store 0x400, fetch
//! 0x800) | AS (primary 0); DAT protection adds bit 61 (0x4).

mod common;

use common::*;
use s390_gaccess::dat::builder::LeafFlags;
use s390_gaccess::dat::{Asce, TableLevel};
use s390_gaccess::vcpu::cr0;

use TableLevel::{RegionFirst as LRF, RegionSecond as LRS, RegionThird as LRT, Segment as LSX};

/// The entry addresses a successful walk of the standard address reads.
fn trace_addrs(g: &Guest, v: u64) -> Vec<u64> {
    let r = g.report(v, Fetch);
    r.trace.entries().iter().map(|e| e.address.0).collect()
}

/// How many entries the walk read.
fn depth(g: &Guest, v: u64, mode: s390_gaccess::exception::AccessMode) -> usize {
    g.report(v, mode).trace.entries().len()
}

fn set_tl(g: &mut Guest, tl: u64) {
    g.vcpu.cr[1] = (g.vcpu.cr[1] & !3) | tl;
}

fn set_origin(g: &mut Guest, origin: u64) {
    g.vcpu.cr[1] = (g.vcpu.cr[1] & 0xFFF) | origin;
}

// ------------------------------------------------------------------------------------
// Successful walks: table entry addressing (§5.6 step C)
// ------------------------------------------------------------------------------------

/// §5.6 step B/C: every designation type translates its standard address, reading
/// entries at origin + index*8 at each level (first entry address per step-B table).
#[test]
fn s5_6_entry_addresses_per_designation_type() {
    let cases: [(_, &[u64]); 4] = [
        (
            RegionFirst,
            &[0x100028, 0x104030, 0x108038, 0x10C040, 0x110048],
        ),
        (RegionSecond, &[0x100030, 0x104038, 0x108040, 0x10C048]),
        (RegionThird, &[0x100038, 0x104040, 0x108048]),
        (Segment, &[0x100040, 0x104048]),
    ];
    for (dt, addrs) in cases {
        let g = Guest::standard(dt);
        let v = std_virt(dt);
        assert_eq!(trace_addrs(&g, v), addrs, "{dt:?}");
        assert_eq!(g.xlate(v, Fetch).unwrap(), 0x80_0ABC, "{dt:?}");
        assert_eq!(g.xlate(v, Store).unwrap(), 0x80_0ABC, "{dt:?}");
    }
}

/// §5.6: the entries the builder wrote are what the walk reads (TT, TF=0, TL=3 for
/// region entries; PTO for the STE; the frame for the PTE).
#[test]
fn s5_6_trace_values_region_first() {
    let g = Guest::standard(RegionFirst);
    let r = g.report(V_RF, Fetch);
    let vals: Vec<u64> = r.trace.entries().iter().map(|e| e.value).collect();
    assert_eq!(vals, [0x10400F, 0x10800B, 0x10C007, 0x110000, 0x800000]);
    let levels: Vec<_> = r.trace.entries().iter().map(|e| e.level.unwrap()).collect();
    assert_eq!(levels, [LRF, LRS, LRT, LSX, Page]);
}

// ------------------------------------------------------------------------------------
// Step A
// ------------------------------------------------------------------------------------

/// §5.6 step A: a real-space ASCE translates v as a real address; DT, TL and origin
/// are ignored, no table is read, and the ASCE checks of step B are skipped.
#[test]
fn s5_6_step_a_real_space_ignores_dt_tl_origin() {
    let mut g = Guest::new();
    // R=1 with region-first DT, TL=0 and an origin far outside memory.
    g.dat_on(Asce(0xFFFF_FFFF_FFFF_F000 | 0x20 | 0xC));
    assert_eq!(g.xlate(0x12_3456, Fetch).unwrap(), 0x12_3456);
    assert_eq!(g.xlate(0x12_3456, Store).unwrap(), 0x12_3456);
    assert!(g.report(0x12_3456, Fetch).trace.entries().is_empty());
    // RFX01 = 1 > TL would be PGM 0x39 for a table ASCE; here it is a real address
    // outside memory: PGM 5, bare.
    assert_bare(g.xlate(0x4000_0000_0012_3456, Fetch), 0x05);
    // Segment DT with RFX != 0 would be 0x38.
    g.vcpu.cr[1] = 0x20;
    assert_bare(g.xlate(0x0020_0000_0000_0000, Store), 0x05);
}

/// §5.6 step A, §5.7: a real-space ASCE's address is prefixed.
#[test]
fn s5_6_step_a_real_space_is_prefixed() {
    let mut g = Guest::new();
    g.dat_on(Asce(0x20));
    g.vcpu.prefix = 0x4_0000;
    assert_eq!(g.xlate(0x10, Fetch).unwrap(), 0x4_0010);
    assert_eq!(g.xlate(0x1FFF, Fetch).unwrap(), 0x4_1FFF);
    assert_eq!(g.xlate(0x4_0010, Fetch).unwrap(), 0x10);
    assert_eq!(g.xlate(0x4_2000, Fetch).unwrap(), 0x4_2000);
    assert_eq!(g.xlate(0x2000, Fetch).unwrap(), 0x2000);
}

// ------------------------------------------------------------------------------------
// Step B: ASCE-level checks, one test per row
// ------------------------------------------------------------------------------------

/// §5.6 step B, region-first row: RFX01 > TL → PGM 0x39, made before any memory
/// access (the origin lies outside memory).
#[test]
fn s5_6_step_b_region_first_rfx01_above_tl() {
    let mut g = Guest::standard(RegionFirst);
    set_origin(&mut g, 0x4000_0000_0000); // far outside the 32 MiB
    set_tl(&mut g, 0);
    assert_pgm(
        g.xlate(0x4000_0000_0000_0000, Fetch),
        0x39,
        0x4000_0000_0000_0800,
        0,
    );
    assert_pgm(
        g.xlate(0xC000_0000_0000_1234, Store),
        0x39,
        0xC000_0000_0000_1400,
        0,
    );
    // RFX01 = 0 = TL passes step B and fails on the entry read.
    assert_bare(g.xlate(0x3FFF_FFFF_FFFF_FFFF, Fetch), 0x05);
    set_tl(&mut g, 2);
    assert_bare(g.xlate(0x8000_0000_0000_0000, Fetch), 0x05);
    assert_pgm(
        g.xlate(0xC000_0000_0000_0000, Fetch),
        0x39,
        0xC000_0000_0000_0800,
        0,
    );
}

/// §5.6 step B: region-second ASCE with RFX != 0 → PGM 0x38 (ASCE type).
#[test]
fn s5_6_step_b_region_second_rfx_nonzero() {
    let g = Guest::standard(RegionSecond);
    assert_pgm(g.xlate(V_RF, Fetch), 0x38, 0x00A0_1803_8080_9800, 0);
    assert_pgm(g.xlate(1 << 53, Store), 0x38, 0x0020_0000_0000_0400, 0);
    assert_pgm(g.xlate(u64::MAX, Fetch), 0x38, 0xFFFF_FFFF_FFFF_F800, 0);
}

/// §5.6 step B: region-second ASCE, RSX01 > TL → PGM 0x3A; RFX != 0 is checked first;
/// no memory is accessed.
#[test]
fn s5_6_step_b_region_second_rsx01_above_tl() {
    let mut g = Guest::standard(RegionSecond);
    set_tl(&mut g, 0);
    assert_pgm(g.xlate(1 << 51, Fetch), 0x3A, 0x0008_0000_0000_0800, 0);
    assert_pgm(
        g.xlate(0x001F_FFFF_FFFF_FFFF, Fetch),
        0x3A,
        0x001F_FFFF_FFFF_F800,
        0,
    );
    // Both wrong: ASCE type first.
    assert_pgm(
        g.xlate((1 << 53) | (1 << 51), Fetch),
        0x38,
        0x0028_0000_0000_0800,
        0,
    );
    set_origin(&mut g, 0x4000_0000_0000);
    assert_pgm(g.xlate(3 << 51, Store), 0x3A, 0x0018_0000_0000_0400, 0);
    set_tl(&mut g, 3);
    assert_bare(g.xlate(3 << 51, Store), 0x05);
}

/// §5.6 step B: region-third ASCE with RFX != 0 or RSX != 0 → PGM 0x38.
#[test]
fn s5_6_step_b_region_third_rfx_or_rsx_nonzero() {
    let g = Guest::standard(RegionThird);
    assert_pgm(g.xlate(1 << 53, Fetch), 0x38, 0x0020_0000_0000_0800, 0);
    assert_pgm(g.xlate(1 << 42, Fetch), 0x38, 0x0000_0400_0000_0800, 0);
    assert_pgm(g.xlate(V_RS, Store), 0x38, 0x0000_1803_8080_9400, 0);
}

/// §5.6 step B: region-third ASCE, RTX01 > TL → PGM 0x3B, after the ASCE-type check.
#[test]
fn s5_6_step_b_region_third_rtx01_above_tl() {
    let mut g = Guest::standard(RegionThird);
    set_tl(&mut g, 1);
    assert_pgm(g.xlate(2 << 40, Fetch), 0x3B, 0x0000_0200_0000_0800, 0);
    assert_pgm(
        g.xlate((1 << 42) | (3 << 40), Fetch),
        0x38,
        0x0000_0700_0000_0800,
        0,
    );
    // RTX01 = 1 = TL passes.
    assert_eq!(depth(&g, 1 << 40, Fetch), 1);
    set_origin(&mut g, 0x4000_0000_0000);
    assert_pgm(g.xlate(3 << 40, Fetch), 0x3B, 0x0000_0300_0000_0800, 0);
}

/// §5.6 step B: segment ASCE with RFX, RSX or RTX != 0 → PGM 0x38.
#[test]
fn s5_6_step_b_segment_upper_indices_nonzero() {
    let g = Guest::standard(Segment);
    assert_pgm(g.xlate(1 << 53, Fetch), 0x38, 0x0020_0000_0000_0800, 0);
    assert_pgm(g.xlate(1 << 42, Fetch), 0x38, 0x0000_0400_0000_0800, 0);
    assert_pgm(g.xlate(1 << 31, Store), 0x38, 0x0000_0000_8000_0400, 0);
    assert_pgm(g.xlate(V_RT, Fetch), 0x38, 0x0000_0003_8080_9800, 0);
}

/// §5.6 step B: segment ASCE, SX01 > TL → PGM 0x10, after the ASCE-type check.
#[test]
fn s5_6_step_b_segment_sx01_above_tl() {
    let mut g = Guest::standard(Segment);
    set_tl(&mut g, 0);
    assert_pgm(g.xlate(1 << 29, Fetch), 0x10, 0x0000_0000_2000_0800, 0);
    assert_pgm(g.xlate(0x7FFF_FFFF, Store), 0x10, 0x0000_0000_7FFF_F400, 0);
    assert_pgm(
        g.xlate((1 << 31) | (1 << 29), Fetch),
        0x38,
        0x0000_0000_A000_0800,
        0,
    );
    set_tl(&mut g, 2);
    assert_pgm(g.xlate(3 << 29, Fetch), 0x10, 0x0000_0000_6000_0800, 0);
    assert_eq!(depth(&g, 2 << 29, Fetch), 1);
    set_origin(&mut g, 0x4000_0000_0000);
    assert_pgm(g.xlate(3 << 29, Fetch), 0x10, 0x0000_0000_6000_0800, 0);
    assert_bare(g.xlate(2 << 29, Fetch), 0x05);
}

/// §5.6 step B: the ASCE's bits 52-53 and 59 are not checked; G, S and X have no
/// effect on the walk (§5.6 reserved-bit list).
#[test]
fn s5_6_asce_reserved_bits_not_checked() {
    for dt in ALL_DT {
        let mut g = Guest::standard(dt);
        g.vcpu.cr[1] |= 0x800 | 0x400 | 0x10 | Asce::G | Asce::S | Asce::X;
        assert_eq!(g.xlate(std_virt(dt), Store).unwrap(), 0x80_0ABC, "{dt:?}");
    }
}

// ------------------------------------------------------------------------------------
// Step C: region-first-table entry
// ------------------------------------------------------------------------------------

/// §5.6 RFTE check 1: I → PGM 0x39 with the TEID and the access id.
#[test]
fn s5_6_rfte_invalid() {
    let g = Guest::standard(RegionFirst);
    g.edit_entry(V_RF, LRF, 0x20, 0);
    assert_pgm(g.xlate(V_RF, Fetch), 0x39, 0x00A0_1803_8080_9800, 0);
    assert_pgm(g.xlate_ar(V_RF, 9, Store), 0x39, 0x00A0_1803_8080_9400, 9);
    assert_eq!(depth(&g, V_RF, Fetch), 1);
}

/// §5.6 RFTE check 2: TT != 3 → PGM 0x12 (bare); I is checked before TT.
#[test]
fn s5_6_rfte_table_type() {
    let g = Guest::standard(RegionFirst);
    for tt in [0u64, 1, 2] {
        g.set_entry(V_RF, LRF, 0x104003 | (tt << 2));
        assert_bare(g.xlate_ar(V_RF, 4, Fetch), 0x12);
    }
    g.set_entry(V_RF, LRF, 0x104003 | 0x20); // TT = 0 and invalid
    assert_pgm(g.xlate(V_RF, Fetch), 0x39, 0x00A0_1803_8080_9800, 0);
}

/// §5.6 RFTE check 3: RSX01 < TF or RSX01 > TL → PGM 0x3A; TT is checked before.
#[test]
fn s5_6_rfte_offset_and_length() {
    let g = Guest::standard(RegionFirst);
    // V_RF has RSX01 = 0: TF = 1 is above it.
    g.set_entry(V_RF, LRF, 0x10400F | (1 << 6));
    assert_pgm(g.xlate(V_RF, Fetch), 0x3A, 0x00A0_1803_8080_9800, 0);
    // TL = 0 with RSX01 = 1.
    let v = V_RF | (1 << 51);
    g.set_entry(V_RF, LRF, 0x10400C);
    assert_pgm(g.xlate(v, Store), 0x3A, 0x00A8_1803_8080_9400, 0);
    // TF = TL = RSX01 = 1 passes on to the region-second entry.
    g.set_entry(V_RF, LRF, 0x10400D | (1 << 6));
    assert_eq!(depth(&g, v, Fetch), 2);
    // Wrong TT and a bad length: TT first.
    g.set_entry(V_RF, LRF, 0x104000 | (1 << 6));
    assert_bare(g.xlate(V_RF, Fetch), 0x12);
}

/// §5.6 RFTE: next entry at RTO + RSX*8; bits 52-53, 55 and 59 are not checked and do
/// not move the next table.
#[test]
fn s5_6_rfte_next_address_and_ignored_bits() {
    let g = Guest::standard(RegionFirst);
    g.edit_entry(V_RF, LRF, 0x800 | 0x400 | 0x100 | 0x10, 0);
    assert_eq!(trace_addrs(&g, V_RF)[1], 0x104030);
    assert_eq!(g.xlate(V_RF, Store).unwrap(), 0x80_0ABC);
}

/// §5.6 RFTE, §8.2, §11 item 5: the P bit counts only with EDAT-1 (CR0.40 and
/// facility 8).
#[test]
fn s5_6_rfte_protection_needs_edat1() {
    for (cr0_edat, facs, protected) in [
        (true, &[8u32, 78][..], true),
        (true, &[8][..], true),
        (false, &[8, 78][..], false),
        (true, &[78][..], false),
        (true, &[][..], false),
    ] {
        let mut g = Guest::standard_with(RegionFirst, 0, facs);
        if !cr0_edat {
            g.vcpu.cr[0] &= !cr0::EDAT;
        }
        g.edit_entry(V_RF, LRF, 0x200, 0);
        assert_eq!(g.xlate(V_RF, Fetch).unwrap(), 0x80_0ABC);
        if protected {
            assert_pgm(g.xlate(V_RF, Store), 0x04, 0x00A0_1803_8080_9404, 0);
        } else {
            assert_eq!(
                g.xlate(V_RF, Store).unwrap(),
                0x80_0ABC,
                "{cr0_edat} {facs:?}"
            );
        }
    }
}

// ------------------------------------------------------------------------------------
// Step C: region-second-table entry
// ------------------------------------------------------------------------------------

/// §5.6 RSTE check 1: I → PGM 0x3A (reached from a region-first walk too).
#[test]
fn s5_6_rste_invalid() {
    let g = Guest::standard(RegionSecond);
    g.edit_entry(V_RS, LRS, 0x20, 0);
    assert_pgm(g.xlate_ar(V_RS, 2, Fetch), 0x3A, 0x0000_1803_8080_9800, 2);
    let g = Guest::standard(RegionFirst);
    g.edit_entry(V_RF, LRS, 0x20, 0);
    assert_pgm(g.xlate(V_RF, Store), 0x3A, 0x00A0_1803_8080_9400, 0);
    assert_eq!(depth(&g, V_RF, Fetch), 2);
}

/// §5.6 RSTE check 2: TT != 2 → PGM 0x12; I first.
#[test]
fn s5_6_rste_table_type() {
    let g = Guest::standard(RegionSecond);
    for tt in [0u64, 1, 3] {
        g.set_entry(V_RS, LRS, 0x104003 | (tt << 2));
        assert_bare(g.xlate(V_RS, Fetch), 0x12);
    }
    g.set_entry(V_RS, LRS, 0x104023);
    assert_pgm(g.xlate(V_RS, Fetch), 0x3A, 0x0000_1803_8080_9800, 0);
}

/// §5.6 RSTE check 3: RTX01 < TF or RTX01 > TL → PGM 0x3B.
#[test]
fn s5_6_rste_offset_and_length() {
    let g = Guest::standard(RegionSecond);
    g.set_entry(V_RS, LRS, 0x10400B | (2 << 6)); // TF 2 > RTX01 0
    assert_pgm(g.xlate(V_RS, Fetch), 0x3B, 0x0000_1803_8080_9800, 0);
    let v = V_RS | (3 << 40);
    g.set_entry(V_RS, LRS, 0x10400A); // TL 2 < RTX01 3
    assert_pgm(g.xlate(v, Fetch), 0x3B, 0x0000_1B03_8080_9800, 0);
    g.set_entry(V_RS, LRS, 0x10400B | (3 << 6)); // TF = TL = 3
    assert_eq!(depth(&g, v, Fetch), 2);
    g.set_entry(V_RS, LRS, 0x104004 | (3 << 6)); // TT 1 and bad offset: TT first
    assert_bare(g.xlate(V_RS, Fetch), 0x12);
}

/// §5.6 RSTE: next entry at RTO + RTX*8; reserved bits not checked; P with EDAT-1
/// only.
#[test]
fn s5_6_rste_next_address_ignored_bits_and_protection() {
    let mut g = Guest::standard(RegionSecond);
    g.edit_entry(V_RS, LRS, 0x800 | 0x400 | 0x100 | 0x10, 0);
    assert_eq!(trace_addrs(&g, V_RS)[1], 0x104038);
    assert_eq!(g.xlate(V_RS, Store).unwrap(), 0x80_0ABC);
    g.edit_entry(V_RS, LRS, 0x200, 0);
    assert_pgm(g.xlate(V_RS, Store), 0x04, 0x0000_1803_8080_9404, 0);
    g.vcpu.cr[0] &= !cr0::EDAT;
    assert_eq!(g.xlate(V_RS, Store).unwrap(), 0x80_0ABC);
}

// ------------------------------------------------------------------------------------
// Step C: region-third-table entry
// ------------------------------------------------------------------------------------

/// §5.6 RTTE check 1: I → PGM 0x3B.
#[test]
fn s5_6_rtte_invalid() {
    let g = Guest::standard(RegionThird);
    g.edit_entry(V_RT, LRT, 0x20, 0);
    assert_pgm(g.xlate_ar(V_RT, 15, Store), 0x3B, 0x0000_0003_8080_9400, 15);
}

/// §5.6 RTTE check 2: TT != 1 → PGM 0x12; I first.
#[test]
fn s5_6_rtte_table_type() {
    let g = Guest::standard(RegionThird);
    for tt in [0u64, 2, 3] {
        g.set_entry(V_RT, LRT, 0x104003 | (tt << 2));
        assert_bare(g.xlate(V_RT, Fetch), 0x12);
    }
    g.set_entry(V_RT, LRT, 0x104023 | (3 << 2));
    assert_pgm(g.xlate(V_RT, Fetch), 0x3B, 0x0000_0003_8080_9800, 0);
}

/// §5.6 RTTE check 3, §11 item 3: CR with a private-space ASCE and EDAT-2 → PGM 0x12.
#[test]
fn s5_6_rtte_common_region_private_space() {
    let g = Guest::standard_with(RegionThird, Asce::P, &[8, 78]);
    g.edit_entry(V_RT, LRT, 0x10, 0);
    assert_bare(g.xlate(V_RT, Fetch), 0x12);
    // Invalid is checked first.
    g.edit_entry(V_RT, LRT, 0x20, 0);
    assert_pgm(g.xlate(V_RT, Fetch), 0x3B, 0x0000_0003_8080_9800, 0);
    // CR is checked before the offset/length checks.
    g.set_entry(V_RT, LRT, 0x104007 | 0x10 | (1 << 6));
    assert_bare(g.xlate(V_RT, Fetch), 0x12);
    // ... and before the 2 GiB frame is used.
    g.set_entry(V_RT, LRT, 0x8000_0000 | 0x400 | 0x10 | 0x4);
    assert_bare(g.xlate(V_RT, Fetch), 0x12);
}

/// §5.6 RTTE check 3 applies only with EDAT-2 and a private ASCE; otherwise CR is
/// ignored.
#[test]
fn s5_6_rtte_common_region_ignored_without_edat2_or_private() {
    // Not private.
    let g = Guest::standard_with(RegionThird, 0, &[8, 78]);
    g.edit_entry(V_RT, LRT, 0x10, 0);
    assert_eq!(g.xlate(V_RT, Fetch).unwrap(), 0x80_0ABC);
    // Private, but no facility 78.
    let g = Guest::standard_with(RegionThird, Asce::P, &[8]);
    g.edit_entry(V_RT, LRT, 0x10, 0);
    assert_eq!(g.xlate(V_RT, Fetch).unwrap(), 0x80_0ABC);
    // Private, facility 78 but not 8 (EDAT-2 needs EDAT-1).
    let g = Guest::standard_with(RegionThird, Asce::P, &[78]);
    g.edit_entry(V_RT, LRT, 0x10, 0);
    assert_eq!(g.xlate(V_RT, Fetch).unwrap(), 0x80_0ABC);
    // Private, both facilities, CR0.40 off.
    let mut g = Guest::standard_with(RegionThird, Asce::P, &[8, 78]);
    g.vcpu.cr[0] &= !cr0::EDAT;
    g.edit_entry(V_RT, LRT, 0x10, 0);
    assert_eq!(g.xlate(V_RT, Fetch).unwrap(), 0x80_0ABC);
}

/// §5.6 RTTE FC=0: SX01 < TF → PGM 0x10; SX01 > TL → PGM 0x10.
#[test]
fn s5_6_rtte_offset_and_length() {
    let g = Guest::standard(RegionThird);
    g.set_entry(V_RT, LRT, 0x104007 | (1 << 6)); // TF 1 > SX01 0
    assert_pgm(g.xlate(V_RT, Fetch), 0x10, 0x0000_0003_8080_9800, 0);
    let v = V_RT | (2 << 29);
    g.set_entry(V_RT, LRT, 0x104005); // TL 1 < SX01 2
    assert_pgm(g.xlate_ar(v, 1, Store), 0x10, 0x0000_0003_C080_9400, 1);
    g.set_entry(V_RT, LRT, 0x104006 | (2 << 6)); // TF = TL = 2
    assert_eq!(depth(&g, v, Fetch), 2);
}

/// §5.6 RTTE FC=0: next entry at STO + SX*8; bits 52 and 55 not checked; P with
/// EDAT-1 only.
#[test]
fn s5_6_rtte_next_address_ignored_bits_and_protection() {
    let mut g = Guest::standard(RegionThird);
    g.edit_entry(V_RT, LRT, 0x800 | 0x100, 0);
    assert_eq!(trace_addrs(&g, V_RT)[1], 0x104040);
    assert_eq!(g.xlate(V_RT, Store).unwrap(), 0x80_0ABC);
    g.edit_entry(V_RT, LRT, 0x200, 0);
    assert_pgm(g.xlate(V_RT, Store), 0x04, 0x0000_0003_8080_9404, 0);
    assert_eq!(g.xlate(V_RT, Fetch).unwrap(), 0x80_0ABC);
    g.vcpu.cr[0] &= !cr0::EDAT;
    assert_eq!(g.xlate(V_RT, Store).unwrap(), 0x80_0ABC);
}

/// A region-third guest with memory at 2 GiB too, for 2 GiB frames.
fn rt_guest_2g(facs: &[u32]) -> Guest {
    let mut g = Guest::with_slots(&[(0, MEM), (0x8000_0000, 16 << 20)], facs);
    let asce = g.space(RegionThird, TABLES, 3, 0, |b| {
        b.map(V_RT & !0xFFF, FRAME, 0x1000, Size4K, LeafFlags::default())
    });
    g.dat_on(asce);
    g
}

/// §5.6 RTTE FC=1 with EDAT-2: a 2 GiB frame at RFAA | (v & 0x7FFF_FFFF), absolute
/// (no prefixing); the walk reads one entry.
#[test]
fn s5_6_rtte_2g_frame() {
    let mut g = rt_guest_2g(&[8, 78]);
    g.set_entry(V_RT, LRT, 0x8000_0000 | 0x400 | 0x4);
    assert_eq!(g.xlate(V_RT, Fetch).unwrap(), 0x8080_9ABC);
    assert_eq!(g.xlate(V_RT & !0x7FFF_FFFF, Store).unwrap(), 0x8000_0000);
    assert_eq!(depth(&g, V_RT, Fetch), 1);
    // RFAA = 0: v's low 31 bits are the absolute address, not prefixed.
    g.vcpu.prefix = 0x2_0000;
    g.set_entry(V_RT, LRT, 0x400 | 0x4);
    assert_eq!(g.xlate(0x3_8000_0010, Fetch).unwrap(), 0x10);
    assert_eq!(g.xlate(0x3_8002_0010, Fetch).unwrap(), 0x2_0010);
    // Bits 33-52 of the entry are not part of RFAA (bits 0-32) and are ignored, as are
    // TF/TL and the ACCF fields.
    g.set_entry(
        V_RT,
        LRT,
        0x8000_0000 | 0x7FFF_F800 | 0x400 | 0x4 | 0xC0 | 0x3,
    );
    assert_eq!(g.xlate(V_RT, Fetch).unwrap(), 0x8080_9ABC);
}

/// §5.6 RTTE FC=1: P → PGM 4 (DAT) on store; the IEP bit has no effect on memops;
/// DAT protection is checked before frame addressing.
#[test]
fn s5_6_rtte_2g_frame_protection_and_addressing() {
    let g = rt_guest_2g(&[8, 78, 130]);
    g.set_entry(V_RT, LRT, 0x8000_0000 | 0x400 | 0x200 | 0x4);
    assert_eq!(g.xlate(V_RT, Fetch).unwrap(), 0x8080_9ABC);
    assert_pgm(g.xlate(V_RT, Store), 0x04, 0x0000_0003_8080_9404, 0);
    g.set_entry(V_RT, LRT, 0x8000_0000 | 0x400 | 0x100 | 0x4);
    assert_eq!(g.xlate(V_RT, Store).unwrap(), 0x8080_9ABC);
    // Frame at 4 GiB: outside memory.
    g.set_entry(V_RT, LRT, 0x1_0000_0000 | 0x400 | 0x4);
    assert_bare(g.xlate(V_RT, Fetch), 0x05);
    assert_bare(g.xlate(V_RT, Store), 0x05);
    g.set_entry(V_RT, LRT, 0x1_0000_0000 | 0x400 | 0x200 | 0x4);
    assert_pgm(g.xlate(V_RT, Store), 0x04, 0x0000_0003_8080_9404, 0);
    assert_bare(g.xlate(V_RT, Fetch), 0x05);
}

/// §5.6 RTTE, §11 item 4: FC=1 without EDAT-2 is read as FC=0: the high bits are an
/// STO, TF/TL apply; no translation-specification exception.
#[test]
fn s5_6_rtte_fc_ignored_without_edat2() {
    for (cr0_edat, facs) in [
        (true, &[8u32][..]),
        (true, &[78][..]),
        (false, &[8, 78][..]),
    ] {
        let mut g = rt_guest_2g(facs);
        if !cr0_edat {
            g.vcpu.cr[0] &= !cr0::EDAT;
        }
        // FC=1, TT=1, TF=0, TL=0 at 0x8000_0000: as FC=0 its STO is 0x8000_0000.
        g.set_entry(V_RT, LRT, 0x8000_0000 | 0x400 | 0x4);
        // SX of V_RT is 8: the STE at 0x8000_0040 points to a page table at 0x8000_1000.
        g.write_u64(0x8000_0040, 0x8000_1000);
        g.write_u64(0x8000_1000 + 9 * 8, 0x90_0000);
        assert_eq!(
            g.xlate(V_RT, Fetch).unwrap(),
            0x90_0ABC,
            "{cr0_edat} {facs:?}"
        );
        assert_eq!(trace_addrs(&g, V_RT)[1], 0x8000_0040);
        // TL = 0 of that entry now limits SX01.
        assert_pgm(
            g.xlate(V_RT | (1 << 29), Fetch),
            0x10,
            0x0000_0003_A080_9800,
            0,
        );
    }
}

// ------------------------------------------------------------------------------------
// Step C: segment-table entry
// ------------------------------------------------------------------------------------

/// §5.6 STE check 1: I → PGM 0x10.
#[test]
fn s5_6_ste_invalid() {
    let g = Guest::standard(Segment);
    g.edit_entry(V_SEG, LSX, 0x20, 0);
    assert_pgm(g.xlate_ar(V_SEG, 3, Fetch), 0x10, 0x0000_0000_0080_9800, 3);
    let g = Guest::standard(RegionFirst);
    g.edit_entry(V_RF, LSX, 0x20, 0);
    assert_pgm(g.xlate(V_RF, Store), 0x10, 0x00A0_1803_8080_9400, 0);
    assert_eq!(depth(&g, V_RF, Fetch), 4);
}

/// §5.6 STE check 2: TT != 0 → PGM 0x12; I first.
#[test]
fn s5_6_ste_table_type() {
    let g = Guest::standard(Segment);
    for tt in [1u64, 2, 3] {
        g.set_entry(V_SEG, LSX, 0x104000 | (tt << 2));
        assert_bare(g.xlate(V_SEG, Fetch), 0x12);
    }
    g.set_entry(V_SEG, LSX, 0x104000 | 0x20 | 0xC);
    assert_pgm(g.xlate(V_SEG, Fetch), 0x10, 0x0000_0000_0080_9800, 0);
}

/// §5.6 STE check 3, §11 item 3: CS with a private-space ASCE → PGM 0x12, whatever
/// EDAT says; I and TT first.
#[test]
fn s5_6_ste_common_segment_private_space() {
    for facs in [&[8u32, 78][..], &[][..]] {
        let mut g = Guest::standard_with(Segment, Asce::P, facs);
        g.vcpu.cr[0] &= !cr0::EDAT;
        g.edit_entry(V_SEG, LSX, 0x10, 0);
        assert_bare(g.xlate(V_SEG, Fetch), 0x12);
        g.edit_entry(V_SEG, LSX, 0x20, 0);
        assert_pgm(g.xlate(V_SEG, Fetch), 0x10, 0x0000_0000_0080_9800, 0);
    }
    // With a 1 MiB frame too (checked before FC is looked at).
    let g = Guest::standard_with(Segment, Asce::P, &[8]);
    g.set_entry(V_SEG, LSX, 0x100_0000 | 0x400 | 0x10);
    assert_bare(g.xlate(V_SEG, Fetch), 0x12);
    // Not private: CS is ignored.
    let g = Guest::standard(Segment);
    g.edit_entry(V_SEG, LSX, 0x10, 0);
    assert_eq!(g.xlate(V_SEG, Fetch).unwrap(), 0x80_0ABC);
}

/// §5.6 STE FC=1 with EDAT-1: a 1 MiB frame at SFAA | (v & 0xFFFFF), absolute.
#[test]
fn s5_6_ste_1m_frame() {
    let mut g = Guest::standard(Segment);
    g.set_entry(V_SEG, LSX, 0x100_0000 | 0x400);
    assert_eq!(g.xlate(V_SEG, Fetch).unwrap(), 0x100_9ABC);
    assert_eq!(g.xlate(V_SEG | 0xF_FFFF, Store).unwrap(), 0x10F_FFFF);
    assert_eq!(depth(&g, V_SEG, Fetch), 1);
    // No prefixing of the frame.
    g.vcpu.prefix = 0x2_0000;
    g.set_entry(V_SEG, LSX, 0x400);
    assert_eq!(g.xlate(0x80_0010, Fetch).unwrap(), 0x10);
    assert_eq!(g.xlate(0x82_0010, Fetch).unwrap(), 0x2_0010);
}

/// §5.6 STE FC=1: bits 44-46, the ACCF-validity/ACC/F fields and IEP are ignored;
/// they are not part of SFAA.
#[test]
fn s5_6_ste_1m_frame_ignored_bits() {
    let g = Guest::standard_with(Segment, 0, &[8, 130]);
    g.set_entry(V_SEG, LSX, 0x100_0000 | 0xF_F800 | 0x400 | 0x100);
    assert_eq!(g.xlate(V_SEG, Store).unwrap(), 0x100_9ABC);
}

/// §5.6 STE FC=1: P → PGM 4 (DAT) before addressing of the frame.
#[test]
fn s5_6_ste_1m_frame_protection_and_addressing() {
    let g = Guest::standard(Segment);
    g.set_entry(V_SEG, LSX, 0x100_0000 | 0x400 | 0x200);
    assert_eq!(g.xlate(V_SEG, Fetch).unwrap(), 0x100_9ABC);
    assert_pgm(g.xlate(V_SEG, Store), 0x04, 0x0000_0000_0080_9404, 0);
    g.set_entry(V_SEG, LSX, 0x4000_0000 | 0x400);
    assert_bare(g.xlate(V_SEG, Store), 0x05);
    g.set_entry(V_SEG, LSX, 0x4000_0000 | 0x400 | 0x200);
    assert_pgm(g.xlate(V_SEG, Store), 0x04, 0x0000_0000_0080_9404, 0);
    assert_bare(g.xlate(V_SEG, Fetch), 0x05);
}

/// §5.6 STE, §11 item 4: FC=1 without EDAT-1 (CR0.40 off, or facility 8 missing) is
/// read as FC=0: its bits 0-52 are a page-table origin.
#[test]
fn s5_6_ste_fc_ignored_without_edat1() {
    for (cr0_edat, facs) in [(false, &[8u32, 78][..]), (true, &[78][..]), (true, &[][..])] {
        let mut g = Guest::standard_with(Segment, 0, facs);
        if !cr0_edat {
            g.vcpu.cr[0] &= !cr0::EDAT;
        }
        g.set_entry(V_SEG, LSX, 0x100_0800 | 0x400);
        // PX = 9: PTE at 0x100_0800 + 0x48.
        g.write_u64(0x100_0848, 0x90_0000);
        assert_eq!(
            g.xlate(V_SEG, Fetch).unwrap(),
            0x90_0ABC,
            "{cr0_edat} {facs:?}"
        );
        assert_eq!(trace_addrs(&g, V_SEG), [0x100040, 0x100_0848]);
    }
}

/// §5.6 STE FC=0: the P bit counts with no EDAT at all (§11 item 5).
#[test]
fn s5_6_ste_protection_without_edat() {
    let mut g = Guest::standard_with(Segment, 0, &[]);
    g.vcpu.cr[0] &= !cr0::EDAT;
    g.edit_entry(V_SEG, LSX, 0x200, 0);
    assert_eq!(g.xlate(V_SEG, Fetch).unwrap(), 0x80_0ABC);
    assert_pgm(g.xlate(V_SEG, Store), 0x04, 0x0000_0000_0080_9404, 0);
}

/// §5.6 STE FC=0: PTO is 2 KiB aligned (bits 0-52); bits 55-57 are not checked.
#[test]
fn s5_6_ste_pto_2k_aligned_and_ignored_bits() {
    let g = Guest::standard(Segment);
    g.write_u64(0x104800 + 9 * 8, 0x90_0000);
    g.set_entry(V_SEG, LSX, 0x104800 | 0x100 | 0x80 | 0x40);
    assert_eq!(g.xlate(V_SEG, Store).unwrap(), 0x90_0ABC);
    assert_eq!(trace_addrs(&g, V_SEG), [0x100040, 0x104848]);
}

// ------------------------------------------------------------------------------------
// Step C: page-table entry
// ------------------------------------------------------------------------------------

/// §5.6 PTE check 1: I → PGM 0x11 (page translation) with TEID and access id.
#[test]
fn s5_6_pte_invalid() {
    let g = Guest::standard(Segment);
    g.edit_entry(V_SEG, Page, 0x400, 0);
    assert_pgm(
        g.xlate_ar(V_SEG, 12, Fetch),
        0x11,
        0x0000_0000_0080_9800,
        12,
    );
    assert_pgm(g.xlate(V_SEG, Store), 0x11, 0x0000_0000_0080_9400, 0);
}

/// §5.6 PTE check 2: Z (bit 52) → PGM 0x12; §11 item 6: I and Z → 0x11.
#[test]
fn s5_6_pte_z_bit() {
    let g = Guest::standard(Segment);
    g.edit_entry(V_SEG, Page, 0x800, 0);
    assert_bare(g.xlate_ar(V_SEG, 5, Fetch), 0x12);
    g.edit_entry(V_SEG, Page, 0x400, 0);
    assert_pgm(g.xlate(V_SEG, Fetch), 0x11, 0x0000_0000_0080_9800, 0);
}

/// §5.6 PTE: P → PGM 4 (DAT) on store only; bits 56-63 and IEP (55) are ignored.
#[test]
fn s5_6_pte_protection_and_ignored_bits() {
    let g = Guest::standard_with(Segment, 0, &[8, 78, 130]);
    g.edit_entry(V_SEG, Page, 0xFF | 0x100, 0);
    assert_eq!(g.xlate(V_SEG, Store).unwrap(), 0x80_0ABC);
    g.edit_entry(V_SEG, Page, 0x200, 0);
    assert_eq!(g.xlate(V_SEG, Fetch).unwrap(), 0x80_0ABC);
    assert_pgm(g.xlate(V_SEG, Store), 0x04, 0x0000_0000_0080_9404, 0);
}

/// §5.6 PTE → REAL: the frame is prefixed (§5.7).
#[test]
fn s5_6_pte_frame_is_prefixed() {
    let mut g = Guest::standard(Segment);
    g.vcpu.prefix = 0x6_0000;
    g.set_entry(V_SEG, Page, 0x1000);
    assert_eq!(g.xlate(V_SEG, Fetch).unwrap(), 0x6_1ABC);
    g.set_entry(V_SEG, Page, 0x6_1000);
    assert_eq!(g.xlate(V_SEG, Fetch).unwrap(), 0x1ABC);
    g.set_entry(V_SEG, Page, 0x6_2000);
    assert_eq!(g.xlate(V_SEG, Fetch).unwrap(), 0x6_2ABC);
    let r = g.report(V_SEG, Fetch);
    assert_eq!(r.translation.unwrap().real.0, 0x6_2ABC);
}

/// §5.6 ABSOLUTE: a PTE frame outside memory → PGM 5 (bare); with P a store gets
/// PGM 4 first (DAT protection before frame addressing, §11 item 7).
#[test]
fn s5_6_pte_frame_addressing_after_protection() {
    let g = Guest::standard(Segment);
    g.set_entry(V_SEG, Page, 0x4000_0000);
    assert_bare(g.xlate_ar(V_SEG, 6, Fetch), 0x05);
    assert_bare(g.xlate(V_SEG, Store), 0x05);
    g.set_entry(V_SEG, Page, 0x4000_0000 | 0x200);
    assert_pgm(g.xlate_ar(V_SEG, 6, Store), 0x04, 0x0000_0000_0080_9404, 6);
    assert_bare(g.xlate(V_SEG, Fetch), 0x05);
}

/// §8.2: the P bits are OR-ed over the levels; a protected segment protects an
/// unprotected page and vice versa.
#[test]
fn s5_6_protection_accumulates_over_levels() {
    for level in [LRF, LRS, LRT, LSX, Page] {
        let g = Guest::standard(RegionFirst);
        g.edit_entry(V_RF, level, 0x200, 0);
        assert_pgm(g.xlate(V_RF, Store), 0x04, 0x00A0_1803_8080_9404, 0);
        assert_eq!(g.xlate(V_RF, Fetch).unwrap(), 0x80_0ABC, "{level:?}");
    }
}

// ------------------------------------------------------------------------------------
// Table-entry addressing (PGM 5), §5.6 step C and §11 item 1
// ------------------------------------------------------------------------------------

/// §5.6 step C: the first entry (ASCE origin + index*8) outside memory → PGM 5 with
/// no TEID and no access id.
#[test]
fn s5_6_asce_origin_outside_memory() {
    for dt in ALL_DT {
        let mut g = Guest::standard(dt);
        set_origin(&mut g, 0x4000_0000);
        assert_bare(g.xlate_ar(std_virt(dt), 7, Fetch), 0x05);
        assert!(g.report(std_virt(dt), Fetch).trace.entries().is_empty());
    }
}

/// §5.6 step C: each next-table origin outside memory → PGM 5, after the entry
/// pointing there passed its checks.
#[test]
fn s5_6_next_table_outside_memory_at_each_level() {
    let g = Guest::standard(RegionFirst);
    g.set_entry(V_RF, LRF, 0x4000_0000 | 0xF);
    assert_bare(g.xlate(V_RF, Store), 0x05);
    assert_eq!(depth(&g, V_RF, Fetch), 1);
    let g = Guest::standard(RegionFirst);
    g.set_entry(V_RF, LRS, 0x4000_0000 | 0xB);
    assert_bare(g.xlate(V_RF, Store), 0x05);
    assert_eq!(depth(&g, V_RF, Fetch), 2);
    let g = Guest::standard(RegionFirst);
    g.set_entry(V_RF, LRT, 0x4000_0000 | 0x7);
    assert_bare(g.xlate(V_RF, Store), 0x05);
    assert_eq!(depth(&g, V_RF, Fetch), 3);
    let g = Guest::standard(RegionFirst);
    g.set_entry(V_RF, LSX, 0x4000_0000);
    assert_bare(g.xlate(V_RF, Store), 0x05);
    assert_eq!(depth(&g, V_RF, Fetch), 4);
}

/// §5.6, §11 item 6: addressing of an entry comes before its own checks — an entry
/// that would be invalid is never read when its address is outside memory.
#[test]
fn s5_6_entry_addressing_before_invalid_bit() {
    let mut g = Guest::with_slots(&[(0, 0x10_4000)], &[8]);
    // Segment table at 0x10_0000; its SX=8 entry is in memory but the page table
    // would be at 0x10_4000, the first byte outside memory.
    g.write_u64(0x10_0040, 0x10_4000);
    g.dat_on(Asce(0x10_0000 | 3));
    assert_bare(g.xlate(V_SEG, Fetch), 0x05);
}

/// §5.6, §11 item 1: table entries are read at absolute addresses — no prefixing, even
/// for tables inside the prefix area or at real 0..0x1FFF.
#[test]
fn s5_6_table_entries_not_prefixed() {
    let mut g = Guest::new();
    // Segment table at absolute 0, page table at absolute 0x1000.
    g.write_u64(8 * 8, 0x1000);
    g.write_u64(0x1000 + 9 * 8, FRAME);
    g.dat_on(Asce(3));
    g.vcpu.prefix = 0x2_0000;
    // The prefix area holds garbage that would be read if prefixing applied.
    g.write_u64(0x2_0040, 0x20);
    g.write_u64(0x2_1048, 0x400);
    assert_eq!(g.xlate(V_SEG, Fetch).unwrap(), 0x80_0ABC);
    assert_eq!(trace_addrs(&g, V_SEG), [0x40, 0x1048]);
}

/// §5.6 step C, §11 item 1: the entry address wraps at 2^64 (origin near 2^64 with a
/// large index wraps to low memory).
#[test]
fn s5_6_entry_address_wraps_at_2_64() {
    let mut g = Guest::new();
    // Segment ASCE with origin 2^64 - 4096; SX = 512 → entry at 2^64 - 4096 + 4096 = 0.
    g.dat_on(Asce(0xFFFF_FFFF_FFFF_F000 | 3));
    g.write_u64(0, 0x10_4000);
    g.write_u64(0x10_4000, FRAME); // PX = 0
    assert_eq!(g.xlate(0x2000_0123, Fetch).unwrap(), 0x80_0123);
    assert_eq!(trace_addrs(&g, 0x2000_0123), [0, 0x10_4000]);
    // SX = 511 → entry at 2^64 - 8: outside memory.
    assert_bare(g.xlate(0x1FF0_0000, Fetch), 0x05);
    // The same through a region-third entry whose STO is near 2^64.
    let mut g = Guest::new();
    g.write_u64(TABLES, 0xFFFF_FFFF_FFFF_F000 | 0x4 | 0x3); // RTX 0
    g.write_u64(0x8, 0x10_4000); // SX 513 → 2^64 - 4096 + 4104 = 8
    g.write_u64(0x10_4000 + 5 * 8, FRAME); // PX 5
    g.dat_on(Asce(TABLES | 0x4 | 3));
    assert_eq!(g.xlate(0x2010_5777, Store).unwrap(), 0x80_0777);
}

/// §5.6, §11 item 1: origins near 2^64 work when memory is there; a region-first
/// space whose tables live in a memslot ending at 2^64, translating an address near
/// 2^64.
#[test]
fn s5_6_tables_at_top_of_address_space() {
    let top = 0u64.wrapping_sub(16 << 20);
    let mut g = Guest::with_slots(&[(0, MEM), (top, 16 << 20)], &[8, 78]);
    let v = 0xFFFF_FFFF_FFFF_F000;
    let asce = g.space(RegionFirst, top, 3, 0, |b| {
        b.map(v, FRAME, 0x1000, Size4K, LeafFlags::default())?;
        b.map(0, FRAME + 0x1000, 0x1000, Size4K, LeafFlags::default())
    });
    g.dat_on(asce);
    assert_eq!(g.xlate(u64::MAX, Fetch).unwrap(), FRAME + 0xFFF);
    assert_eq!(g.xlate(0x10, Store).unwrap(), FRAME + 0x1010);
    let t = trace_addrs(&g, u64::MAX);
    assert_eq!(t[0], top + 0x7FF * 8);
    // A page table at the very top: PTO = 2^64 - 2 KiB, PX = 255 → the last doubleword.
    g.set_entry(v, LSX, 0xFFFF_FFFF_FFFF_F800);
    g.write_u64(0xFFFF_FFFF_FFFF_FFF8, FRAME + 0x2000);
    assert_eq!(g.xlate(u64::MAX, Fetch).unwrap(), FRAME + 0x2FFF);
    assert_eq!(
        *trace_addrs(&g, u64::MAX).last().unwrap(),
        0xFFFF_FFFF_FFFF_FFF8
    );
}

/// §5.6 notes: no TLB — every translation re-reads the tables as they are now.
#[test]
fn s5_6_no_tlb() {
    let g = Guest::standard(Segment);
    assert_eq!(g.xlate(V_SEG, Fetch).unwrap(), 0x80_0ABC);
    g.set_entry(V_SEG, Page, 0x90_0000);
    assert_eq!(g.xlate(V_SEG, Fetch).unwrap(), 0x90_0ABC);
    g.edit_entry(V_SEG, Page, 0x400, 0);
    assert_pgm(g.xlate(V_SEG, Fetch), 0x11, 0x0000_0000_0080_9800, 0);
}

/// §5.6 EDAT gating: a 1 MiB frame needs CR0.40 and facility 8; a 2 GiB frame also
/// facility 78 (edat2 = edat1 && facility 78).
#[test]
fn s5_6_edat_gating_matrix() {
    for (cr0_edat, f8, f78) in [
        (false, false, false),
        (false, true, true),
        (true, false, false),
        (true, false, true),
        (true, true, false),
        (true, true, true),
    ] {
        let facs: Vec<u32> = [(f8, 8), (f78, 78)]
            .iter()
            .filter(|x| x.0)
            .map(|x| x.1)
            .collect();
        let mut g = rt_guest_2g(&facs);
        if !cr0_edat {
            g.vcpu.cr[0] &= !cr0::EDAT;
        }
        let edat1 = cr0_edat && f8;
        let edat2 = edat1 && f78;
        // 1 MiB frame at 0x100_0000 via the segment entry.
        g.set_entry(V_RT, LSX, 0x100_0000 | 0x400);
        let r = g.xlate(V_RT, Fetch);
        if edat1 {
            assert_eq!(r.unwrap(), 0x100_9ABC);
        } else {
            // As FC=0: page table at 0x100_0000, whose entry 9 is zero (a valid PTE
            // for frame 0).
            assert_eq!(r.unwrap(), 0xABC);
        }
        // 2 GiB frame at 0x8000_0000 via the region-third entry.
        g.set_entry(V_RT, LRT, 0x8000_0000 | 0x400 | 0x4);
        let r = g.xlate(V_RT, Fetch);
        if edat2 {
            assert_eq!(r.unwrap(), 0x8080_9ABC);
        } else {
            // As FC=0: segment table at 0x8000_0000 whose entry 8 is zero: an STE with
            // PTO 0, entry 9 of which is zero too → frame 0.
            assert_eq!(r.unwrap(), 0xABC, "{cr0_edat} {f8} {f78}");
        }
    }
}
