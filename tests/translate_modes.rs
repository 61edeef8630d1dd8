//! Effective addresses, ASCE selection, fragmenting and the low-address predicate
//! (kernel-semantics.md §5.1, §5.2, §5.4, §5.5, §5.7 for DAT off, §5.10 item 1).

mod common;

use common::*;
use s390_gaccess::dat::Asce;
use s390_gaccess::dat::builder::LeafFlags;
use s390_gaccess::vcpu::{Psw, cr0};

const MODE64: u64 = Psw::EA | Psw::BA;
const MODE31: u64 = Psw::BA;
const MODE24: u64 = 0;
const MODE_EA_ONLY: u64 = Psw::EA;

fn set_mode(g: &mut Guest, bits: u64) {
    g.vcpu.psw.mask = (g.vcpu.psw.mask & !(Psw::EA | Psw::BA)) | bits;
}

// ------------------------------------------------------------------------------------
// §5.1
// ------------------------------------------------------------------------------------

/// §5.1: 64-bit leaves the address alone, 31-bit masks 0x7FFF_FFFF, 24-bit masks
/// 0x00FF_FFFF, EA=1/BA=0 is 24-bit (§11 item 13).
#[test]
fn s5_1_effective_address_per_mode() {
    let mut g = Guest::new();
    let ga = 0xFFFF_FFFF_F1A2_B3C4;
    for (mode, eff) in [
        (MODE64, 0xFFFF_FFFF_F1A2_B3C4),
        (MODE31, 0x71A2_B3C4),
        (MODE24, 0x00A2_B3C4),
        (MODE_EA_ONLY, 0x00A2_B3C4),
    ] {
        set_mode(&mut g, mode);
        assert_eq!(g.report(ga, Fetch).effective.0, eff, "{mode:#x}");
    }
    // DAT off: the effective address is the real address.
    set_mode(&mut g, MODE24);
    assert_eq!(g.xlate(ga, Fetch).unwrap(), 0xA2_B3C4);
    set_mode(&mut g, MODE_EA_ONLY);
    assert_eq!(g.xlate(ga, Store).unwrap(), 0xA2_B3C4);
    set_mode(&mut g, MODE31);
    assert_bare(g.xlate(ga, Fetch), 0x05);
}

/// §5.1: the walk and the TEID use the effective address.
#[test]
fn s5_1_walk_and_teid_use_effective_address() {
    let mut g = Guest::standard(Segment);
    set_mode(&mut g, MODE31);
    // In 64-bit mode this would be an ASCE-type exception (RTX != 0).
    assert_eq!(g.xlate(0xFFFF_FFFF_8080_9ABC, Fetch).unwrap(), 0x80_0ABC);
    g.edit_entry(V_SEG, Page, 0x400, 0);
    assert_pgm(g.xlate(0xFFFF_FFFF_8080_9ABC, Fetch), 0x11, 0x0080_9800, 0);
    set_mode(&mut g, MODE24);
    assert_pgm(g.xlate(0x1234_5678_9A80_9ABC, Store), 0x11, 0x0080_9400, 0);
}

/// §5.1: logical accesses use the effective address for the data too.
#[test]
fn s5_1_access_uses_effective_address() {
    let mut g = Guest::new();
    set_mode(&mut g, MODE24);
    g.store(0xFF00_0000_0000_1234, 0, &[0xAB, 0xCD], 0).unwrap();
    assert_eq!(g.read(0x1234, 2), [0xAB, 0xCD]);
    assert_eq!(g.fetch(0x7700_1234, 0, 2, 0).unwrap(), [0xAB, 0xCD]);
}

// ------------------------------------------------------------------------------------
// §5.2
// ------------------------------------------------------------------------------------

/// A guest with primary, secondary and home spaces mapping V_SEG to 0x80_0000,
/// 0x81_0000 and 0x83_0000.
fn three_space_guest() -> Guest {
    let mut g = Guest::new();
    let map = |frame| {
        move |b: &mut s390_gaccess::dat::builder::SpaceBuilder<'_>| {
            b.map(V_SEG & !0xFFF, frame, 0x1000, Size4K, LeafFlags::default())
        }
    };
    let p = g.space(Segment, 0x10_0000, 3, 0, map(0x80_0000));
    let s = g.space(Segment, 0x14_0000, 3, 0, map(0x81_0000));
    let h = g.space(Segment, 0x1C_0000, 3, 0, map(0x83_0000));
    g.dat_on(p);
    g.vcpu.cr[7] = s.0;
    g.vcpu.cr[13] = h.0;
    g
}

/// §5.2 step 3: primary → CR1, secondary → CR7, home → CR13.
#[test]
fn s5_2_asce_by_address_space_control() {
    let mut g = three_space_guest();
    for (as_bits, frame) in [
        (AS_PRIMARY, 0x80_0000),
        (AS_SECONDARY, 0x81_0000),
        (AS_HOME, 0x83_0000),
    ] {
        g.vcpu.psw.mask = PSW_DAT64 | as_bits;
        assert_eq!(g.xlate(V_SEG, Fetch).unwrap(), frame + 0xABC);
        assert_eq!(
            g.report(V_SEG, Store).asce.unwrap().0,
            g.vcpu.cr[match as_bits {
                AS_PRIMARY => 1,
                AS_SECONDARY => 7,
                _ => 13,
            }]
        );
    }
}

/// §5.2 step 1: with DAT off the ASCE is 0x20 whatever the AS bits and CRs are.
#[test]
fn s5_2_dat_off_asce_is_real_space() {
    let mut g = three_space_guest();
    for as_bits in [AS_PRIMARY, AS_AR, AS_SECONDARY, AS_HOME] {
        g.vcpu.psw.mask = MODE64 | as_bits;
        g.vcpu.ar[4] = 0xFFFF_FFFF;
        let r = s390_gaccess::translate::translate(&g.vm, &g.vcpu, V_SEG, 4, Fetch, akey(0));
        assert_eq!(r.asce, Some(Asce(0x20)));
        assert_eq!(r.result.unwrap().0.0, V_SEG);
        assert!(r.trace.entries().is_empty());
    }
}

/// §5.2: no secondary-space-control (CR0 bit 37) and no problem-state check.
#[test]
fn s5_2_no_ssm_or_problem_state_check() {
    let mut g = three_space_guest();
    g.vcpu.cr[0] &= !(1 << (63 - 37));
    g.vcpu.psw.mask = PSW_DAT64 | AS_SECONDARY | Psw::PROBLEM_STATE;
    assert_eq!(g.xlate(V_SEG, Store).unwrap(), 0x81_0ABC);
    g.vcpu.psw.mask = PSW_DAT64 | AS_HOME | Psw::PROBLEM_STATE;
    assert_eq!(g.xlate(V_SEG, Store).unwrap(), 0x83_0ABC);
}

// ------------------------------------------------------------------------------------
// §5.4
// ------------------------------------------------------------------------------------

/// A segment guest with V_SEG's page and the next one mapped (to 0x80_0000 and
/// 0x90_0000).
fn two_page_guest() -> Guest {
    let mut g = Guest::new();
    let v = V_SEG & !0xFFF;
    let asce = g.space(Segment, TABLES, 3, 0, |b| {
        b.map(v, 0x80_0000, 0x1000, Size4K, LeafFlags::default())?;
        b.map(v + 0x1000, 0x90_0000, 0x1000, Size4K, LeafFlags::default())
    });
    g.dat_on(asce);
    g
}

/// §5.4: a multi-page access is cut at page boundaries; each fragment is translated on
/// its own (discontiguous frames).
#[test]
fn s5_4_fragments_translate_separately() {
    let g = two_page_guest();
    let data: Vec<u8> = (0..0x600).map(|i| i as u8).collect();
    g.store(0x80_9D00, 0, &data, 0).unwrap();
    assert_eq!(g.read(0x80_0D00, 0x300), &data[..0x300]);
    assert_eq!(g.read(0x90_0000, 0x300), &data[0x300..]);
    assert_eq!(g.fetch(0x80_9D00, 0, 0x600, 0).unwrap(), data);
}

/// §5.4, §11 item 8: all pages are translated before any byte moves; the TEID holds
/// the failing fragment's (page-aligned) address.
#[test]
fn s5_4_later_page_fails_nothing_moved() {
    let g = two_page_guest();
    g.edit_entry(V_SEG + 0x1000, Page, 0x400, 0);
    assert_pgm(
        g.store(0x80_9D00, 3, &[0xEE; 0x600], 0),
        0x11,
        0x0080_A400,
        3,
    );
    assert_eq!(g.read(0x80_0D00, 0x300), vec![0; 0x300]);
    assert_pgm(g.fetch(0x80_9D00, 0, 0x600, 0), 0x11, 0x0080_A800, 0);
    assert_pgm(g.check(0x80_9D00, 0, 0x600, Store, 0), 0x11, 0x0080_A400, 0);
}

/// §5.4: when page 0 fails, the TEID holds the original address's page.
#[test]
fn s5_4_first_page_fails() {
    let g = two_page_guest();
    g.edit_entry(V_SEG, Page, 0x400, 0);
    assert_pgm(g.store(0x80_9FFF, 0, &[1, 2], 0), 0x11, 0x0080_9400, 0);
    assert_eq!(g.read(0x90_0000, 1), [0]);
}

/// §5.4: a 64 KiB access starting mid-page spans 17 pages.
#[test]
fn s5_4_seventeen_pages() {
    let mut g = Guest::new();
    let asce = g.space(Segment, TABLES, 3, 0, |b| {
        b.map(0x20_0000, 0x40_0000, 0x11000, Size4K, LeafFlags::default())
    });
    g.dat_on(asce);
    let data = vec![0x5A; 0x10000];
    g.store(0x20_0800, 0, &data, 0).unwrap();
    assert_eq!(g.read(0x40_0800, 0x10000), data);
    assert_eq!(g.read(0x40_0000, 0x800), vec![0; 0x800]);
    assert_eq!(g.read(0x41_0800, 0x800), vec![0; 0x800]);
}

/// §5.4: in 24-bit mode 0xFFFFF0 + 32 wraps to 0 at the next fragment; DAT off, the
/// wrapped fragment is prefixed (§5.7).
#[test]
fn s5_4_wrap_24_bit() {
    let mut g = Guest::new();
    set_mode(&mut g, MODE24);
    let data: Vec<u8> = (0..32).collect();
    g.store(0xFF_FFF0, 0, &data, 0).unwrap();
    assert_eq!(g.read(0xFF_FFF0, 16), &data[..16]);
    assert_eq!(g.read(0, 16), &data[16..]);
    assert_eq!(g.read(0x100_0000, 16), vec![0; 16]);
    g.vcpu.prefix = 0x2_0000;
    let data2 = [0x77u8; 32];
    g.store(0xFF_FFF0, 0, &data2, 0).unwrap();
    assert_eq!(g.read(0x2_0000, 16), [0x77; 16]);
    assert_eq!(g.read(0, 16), &data[16..]);
    assert_eq!(g.fetch(0xFF_FFF0, 0, 32, 0).unwrap(), data2);
}

/// §5.4: the wrapped fragment of a DAT access is translated at address 0 and an
/// exception there reports address 0.
#[test]
fn s5_4_wrap_24_bit_dat_teid() {
    let mut g = Guest::new();
    let asce = g.space(Segment, TABLES, 3, 0, |b| {
        b.map(0xFF_F000, 0x80_0000, 0x1000, Size4K, LeafFlags::default())
    });
    g.dat_on(asce);
    set_mode(&mut g, MODE24);
    // Page 0 has no page table: segment-translation exception at address 0.
    assert_pgm(g.store(0xFF_FFF0, 2, &[1; 32], 0), 0x10, 0x400, 2);
    assert_pgm(g.fetch(0xFF_FFF0, 0, 32, 0), 0x10, 0x800, 0);
    assert_eq!(g.read(0x80_0FF0, 16), vec![0; 16]);
    // In 64-bit mode the same access goes on to 0x100_0000 instead.
    set_mode(&mut g, MODE64);
    assert_pgm(g.fetch(0xFF_FFF0, 0, 32, 0), 0x10, 0x0100_0800, 0);
}

/// §5.4: in 31-bit mode the wrap is at 2^31.
#[test]
fn s5_4_wrap_31_bit() {
    let mut g = Guest::with_slots(&[(0, MEM), (0x7FFF_F000, 0x1000)], &[]);
    set_mode(&mut g, MODE31);
    let data: Vec<u8> = (100..132).collect();
    g.store(0x7FFF_FFF0, 0, &data, 0).unwrap();
    assert_eq!(g.read(0x7FFF_FFF0, 16), &data[..16]);
    assert_eq!(g.read(0, 16), &data[16..]);
    assert_eq!(g.fetch(0xFFFF_FFF0, 0, 32, 0).unwrap(), data);
}

/// §5.4: in 64-bit mode the wrap is modulo 2^64 (DAT off and DAT on).
#[test]
fn s5_4_wrap_64_bit() {
    let top = 0xFFFF_FFFF_FFFF_F000;
    let mut g = Guest::with_slots(&[(0, MEM), (top, 0x1000)], &[]);
    let data: Vec<u8> = (0..32).map(|i| 0xC0 + i).collect();
    g.store(u64::MAX - 15, 0, &data, 0).unwrap();
    assert_eq!(g.read(u64::MAX - 15, 16), &data[..16]);
    assert_eq!(g.read(0, 16), &data[16..]);
    // Through a region-first space.
    let asce = g.space(RegionFirst, TABLES, 3, 0, |b| {
        b.map(top, 0x80_0000, 0x1000, Size4K, LeafFlags::default())?;
        b.map(0, 0x90_0000, 0x1000, Size4K, LeafFlags::default())
    });
    g.dat_on(asce);
    g.store(u64::MAX - 15, 0, &data, 0).unwrap();
    assert_eq!(g.read(0x80_0FF0, 16), &data[..16]);
    assert_eq!(g.read(0x90_0000, 16), &data[16..]);
    assert_eq!(g.fetch(u64::MAX - 15, 0, 32, 0).unwrap(), data);
    assert!(g.check(u64::MAX - 15, 0, 32, Store, 0).is_ok());
}

/// §5.4, §8.1: LAP is tested at each fragment's first byte, before translation; the
/// TEID holds that address with bit 56.
#[test]
fn s5_4_lap_per_fragment() {
    let mut g = Guest::new();
    g.vcpu.cr[0] |= cr0::LOW_ADDRESS_PROTECTION;
    // 0xFF0: not low; the second fragment starts at 0x1000, which is.
    assert_pgm(
        g.store(0xFF0, 0, &[9; 32], 0),
        0x04,
        0x1000 | 0x400 | 0x80,
        0,
    );
    assert_eq!(g.read(0xFF0, 16), vec![0; 16]);
    assert_pgm(
        g.check(0xFF0, 0, 32, Store, 0),
        0x04,
        0x1000 | 0x400 | 0x80,
        0,
    );
    // Fragments at 0x1200 and 0x2000 are not low.
    g.store(0x1200, 0, &[9; 0x1000], 0).unwrap();
    // A fetch is never LAP-protected.
    assert!(g.fetch(0xFF0, 0, 32, 0).is_ok());
}

/// §5.4: the key is checked per fragment in CHECK_ONLY, after translating pages one
/// by one; the real access translates all pages first (§5.10 item 1).
#[test]
fn s5_4_real_access_translates_all_pages_before_keys() {
    let g = two_page_guest();
    g.set_skey(0x80_0000, 0x30); // ACC 3
    g.edit_entry(V_SEG + 0x1000, Page, 0x400, 0);
    // Real store with key 5: page 1's translation exception wins.
    assert_pgm(g.store(0x80_9F00, 0, &[1; 0x200], 5), 0x11, 0x0080_A400, 0);
    // CHECK_ONLY: page 0's key failure comes first.
    assert_pgm(g.check(0x80_9F00, 0, 0x200, Store, 5), 0x04, 0x0080_9408, 0);
}

/// §5.4: the translation phase of a real access runs with key 0; the key check comes
/// in the data phase (the outcome is the same PGM 4 KEYC).
#[test]
fn s5_4_real_access_key_in_data_phase() {
    let g = two_page_guest();
    g.set_skey(0x90_0000, 0x38); // ACC 3, fetch-protected
    assert_pgm(g.fetch(0x80_9F00, 0, 0x200, 5), 0x04, 0x0080_A808, 0);
    // Page 0 was read (R set), page 1 was not.
    assert!(g.referenced(0x80_0000));
    assert!(!g.referenced(0x90_0000));
}

// ------------------------------------------------------------------------------------
// §5.5
// ------------------------------------------------------------------------------------

/// §5.5: low addresses are 0..511 and 4096..4607 of the effective address.
#[test]
fn s5_5_low_address_predicate() {
    let mut g = Guest::new();
    g.vcpu.cr[0] |= cr0::LOW_ADDRESS_PROTECTION;
    for a in [0u64, 1, 511, 4096, 4607] {
        assert_pgm(g.store(a, 0, &[1], 0), 0x04, (a & !0xFFF) | 0x480, 0);
    }
    for a in [
        512u64,
        4095,
        4608,
        0x2000,
        0x2100,
        0x1_0000_0000,
        0x1000_0000_0000_1000,
    ] {
        let r = g.store(a, 0, &[1], 0);
        assert!(r.is_ok() || pgm(r).code == 0x05, "{a:#x}");
    }
    // The predicate is on the effective address.
    set_mode(&mut g, MODE31);
    assert_pgm(g.store(0x8000_0000, 0, &[1], 0), 0x04, 0x480, 0);
    set_mode(&mut g, MODE24);
    assert_pgm(g.store(0x1_0000_1100, 0, &[1], 0), 0x04, 0x1480, 0);
}

/// §5.5, §8.1: LAP comes before translation — a low address whose page is invalid
/// reports protection, not page translation.
#[test]
fn s5_5_lap_before_translation() {
    let mut g = Guest::new();
    let asce = g.space(Segment, TABLES, 3, 0, |b| {
        b.map(0x1000, 0x80_0000, 0x1000, Size4K, LeafFlags::default())
    });
    g.dat_on(asce);
    g.vcpu.cr[0] |= cr0::LOW_ADDRESS_PROTECTION;
    g.edit_entry(0x1000, Page, 0x400, 0);
    assert_pgm(g.store(0x1010, 0, &[1], 0), 0x04, 0x1480, 0);
    assert_pgm(g.xlate(0x1010, Store), 0x04, 0x1480, 0);
    assert_pgm(g.xlate(0x1010, Fetch), 0x11, 0x1800, 0);
    assert!(g.report(0x1010, Store).trace.entries().is_empty());
}
