//! The program-interruption record of each code: TEID contents, FSI, AS bits, access
//! ids and termination (kernel-semantics.md §9.2, §9.3, §9.4, §11 item 10; §5.2 step 2
//! for instruction fetches).
//!
//! TEID = page address | FSI << 10 (store 1, fetch 2) | B56 0x80 | B60 0x8 | B61 0x4 |
//! AS (0 primary, 1 AR, 2 secondary, 3 home).

mod common;

use common::*;
use s390_gaccess::dat::builder::LeafFlags;
use s390_gaccess::keys::AccessKey;
use s390_gaccess::translate::translate_address_with_key;
use s390_gaccess::vcpu::{Psw, cr0};

/// A segment guest whose V_SEG page is invalid, with the same ASCE in CR1, CR7, CR13.
fn invalid_page_guest() -> Guest {
    let mut g = Guest::standard(Segment);
    g.edit_entry(V_SEG, Page, 0x400, 0);
    g.vcpu.cr[7] = g.vcpu.cr[1];
    g.vcpu.cr[13] = g.vcpu.cr[1];
    g
}

/// §9.2: FSI is 01 for a store and 10 for a fetch.
#[test]
fn s9_2_fetch_store_indication() {
    let g = invalid_page_guest();
    assert_pgm(g.xlate(V_SEG, Store), 0x11, 0x0080_9400, 0);
    assert_pgm(g.xlate(V_SEG, Fetch), 0x11, 0x0080_9800, 0);
    assert_pgm(g.store(V_SEG, 0, &[0], 0), 0x11, 0x0080_9400, 0);
    assert_pgm(g.fetch(V_SEG, 0, 1, 0), 0x11, 0x0080_9800, 0);
    assert_pgm(g.check(V_SEG, 0, 1, Fetch, 0), 0x11, 0x0080_9800, 0);
}

/// §9.2: AS is PSW bits 16-17 as they are — also in AR mode when the ALET resolves to
/// CR1 (ALET 0) or CR7 (ALET 1).
#[test]
fn s9_2_as_bits_per_address_space() {
    let mut g = invalid_page_guest();
    for (as_bits, teid_as) in [(AS_PRIMARY, 0), (AS_SECONDARY, 2), (AS_HOME, 3)] {
        g.vcpu.psw.mask = PSW_DAT64 | as_bits;
        assert_pgm(g.xlate(V_SEG, Fetch), 0x11, 0x0080_9800 | teid_as, 0);
    }
    g.vcpu.psw.mask = PSW_DAT64 | AS_AR;
    g.vcpu.ar[3] = 1;
    assert_pgm(g.xlate_ar(V_SEG, 0, Fetch), 0x11, 0x0080_9801, 0);
    assert_pgm(g.xlate_ar(V_SEG, 3, Store), 0x11, 0x0080_9401, 3);
}

/// §9.2, §11 item 10: AS is recorded even with DAT off.
#[test]
fn s9_2_as_bits_with_dat_off() {
    let mut g = Guest::new();
    g.vcpu.cr[0] |= cr0::LOW_ADDRESS_PROTECTION;
    for (as_bits, teid_as) in [(AS_PRIMARY, 0), (AS_AR, 1), (AS_SECONDARY, 2), (AS_HOME, 3)] {
        g.vcpu.psw.mask = Psw::EA | Psw::BA | as_bits;
        assert_pgm(g.store(0x10, 4, &[1], 0), 0x04, 0x480 | teid_as, 4);
    }
}

/// §9.3: codes 0x10, 0x11, 0x38-0x3B record address, FSI, AS and the access id = the
/// memop's ar, even outside AR mode; bits 56/60/61 stay 0.
#[test]
fn s9_3_translation_codes_record_teid_and_ar() {
    let g = invalid_page_guest();
    assert_pgm(g.xlate_ar(V_SEG, 7, Fetch), 0x11, 0x0080_9800, 7);
    assert_pgm(g.store(V_SEG, 7, &[1], 0), 0x11, 0x0080_9400, 7);
    assert_pgm(g.xlate_ar(0x8000_0000, 7, Fetch), 0x38, 0x8000_0800, 7);
    let g = Guest::standard(Segment);
    assert_pgm(g.xlate_ar(0x100_0000, 7, Fetch), 0x10, 0x0100_0800, 7);
    let g = Guest::standard(RegionFirst);
    g.edit_entry(V_RF, s390_gaccess::dat::TableLevel::RegionFirst, 0x20, 0);
    assert_pgm(g.xlate_ar(V_RF, 7, Fetch), 0x39, 0x00A0_1803_8080_9800, 7);
    assert_pgm(
        g.xlate_ar(V_RF | (1 << 42), 7, Fetch),
        0x39,
        0x00A0_1C03_8080_9800,
        7,
    );
    let g = Guest::standard(RegionSecond);
    assert_pgm(
        g.xlate_ar(V_RS ^ (1 << 42), 7, Store),
        0x3A,
        0x0000_1C03_8080_9400,
        7,
    );
    let g = Guest::standard(RegionThird);
    assert_pgm(
        g.xlate_ar(V_RT ^ (1 << 31), 7, Store),
        0x3B,
        0x0000_0003_0080_9400,
        7,
    );
}

/// §9.3: codes 0x05 and 0x12 record nothing besides the code, whatever ar is.
#[test]
fn s9_3_addressing_and_specification_are_bare() {
    let g = Guest::standard(Segment);
    g.edit_entry(V_SEG, Page, 0x800, 0);
    assert_bare(g.xlate_ar(V_SEG, 7, Fetch), 0x12);
    assert_bare(g.store(V_SEG, 7, &[1], 0), 0x12);
    g.set_entry(V_SEG, Page, 0x4000_0000);
    assert_bare(g.xlate_ar(V_SEG, 7, Store), 0x05);
    assert_bare(g.check(V_SEG, 7, 1, Store, 0), 0x05);
    let g = Guest::new();
    assert_bare(g.store(0x4000_0000, 9, &[1], 0), 0x05);
}

/// §9.3: PGM 4 by protection type — LA (B56), DAT (B61), KEYC (B60), ALC (B60+B61,
/// see translate_art.rs) — with address, FSI, AS and access id.
#[test]
fn s9_3_protection_types() {
    let mut g = Guest::standard(Segment);
    g.vcpu.cr[0] |= cr0::LOW_ADDRESS_PROTECTION;
    // LA: address 0 is unmapped, LAP comes first.
    assert_pgm(g.store(0x1FF, 2, &[1], 0), 0x04, 0x0000_0000_0000_0480, 2);
    // DAT.
    g.edit_entry(V_SEG, Page, 0x200, 0);
    assert_pgm(g.store(V_SEG, 2, &[1], 0), 0x04, 0x0080_9404, 2);
    // KEYC.
    g.edit_entry(V_SEG, Page, 0, 0x200);
    g.set_skey(FRAME, 0x38);
    assert_pgm(g.store(V_SEG, 2, &[1], 6), 0x04, 0x0080_9408, 2);
    assert_pgm(g.fetch(V_SEG, 2, 1, 6), 0x04, 0x0080_9808, 2);
    assert_pgm(g.check(V_SEG, 2, 1, Fetch, 6), 0x04, 0x0080_9808, 2);
    assert_pgm(g.xlate_key(V_SEG, Store, 6), 0x04, 0x0080_9408, 0);
}

/// §9.4: a key failure of a store on page idx > 0 terminates: bits 56/60/61 clear,
/// address, FSI and AS kept; earlier pages were stored.
#[test]
fn s9_4_store_key_failure_on_later_page_terminates() {
    let mut g = Guest::new();
    let asce = g.space(Segment, TABLES, 3, 0, |b| {
        b.map(0x80_9000, 0x80_0000, 0x1000, Size4K, LeafFlags::default())?;
        b.map(0x80_A000, 0x90_0000, 0x1000, Size4K, LeafFlags::default())
    });
    g.dat_on(asce);
    g.vcpu.psw.mask |= AS_SECONDARY;
    g.vcpu.cr[7] = asce.0;
    g.set_skey(0x80_0000, 0x50); // ACC 5: the store's key
    g.set_skey(0x90_0000, 0x30);
    assert_pgm(
        g.store(0x80_9F00, 1, &[0xAA; 0x200], 5),
        0x04,
        0x0080_A402,
        1,
    );
    assert_eq!(g.read(0x80_0F00, 0x100), vec![0xAA; 0x100]);
    assert_eq!(g.read(0x90_0000, 0x100), vec![0; 0x100]);
    // Page 0 failing does not terminate.
    g.set_skey(0x80_0000, 0x30);
    assert_pgm(
        g.store(0x80_9F00, 1, &[0xBB; 0x200], 5),
        0x04,
        0x0080_9408 | 2,
        1,
    );
    // A fetch never terminates.
    g.set_skey(0x80_0000, 0x00);
    g.set_skey(0x90_0000, 0x38);
    assert_pgm(g.fetch(0x80_9F00, 1, 0x200, 5), 0x04, 0x0080_A80A, 1);
    // CHECK_ONLY never terminates.
    g.set_skey(0x80_0000, 0x50);
    g.set_skey(0x90_0000, 0x30);
    assert_pgm(g.check(0x80_9F00, 1, 0x200, Store, 5), 0x04, 0x0080_A40A, 1);
}

/// §5.2 step 2, §8.5: an instruction fetch uses CR13 in home mode and CR1 otherwise
/// (no AR translation); IEP (CR0.43, facility 130, leaf IEP bit) gives PGM 4 type IEP
/// (B56+B61), TEID AS as in the PSW.
#[test]
fn s5_2_s8_5_instruction_fetch() {
    let mut g = Guest::new();
    let p = g.space(Segment, 0x10_0000, 3, 0, |b| {
        b.map(
            V_SEG & !0xFFF,
            0x80_0000,
            0x1000,
            Size4K,
            LeafFlags {
                protect: false,
                iep: true,
            },
        )
    });
    let s = g.space(Segment, 0x14_0000, 3, 0, |b| {
        b.map(
            V_SEG & !0xFFF,
            0x81_0000,
            0x1000,
            Size4K,
            LeafFlags::default(),
        )
    });
    let h = g.space(Segment, 0x18_0000, 3, 0, |b| {
        b.map(
            V_SEG & !0xFFF,
            0x83_0000,
            0x1000,
            Size4K,
            LeafFlags::default(),
        )
    });
    g.dat_on(p);
    g.vcpu.cr[7] = s.0;
    g.vcpu.cr[13] = h.0;
    g.vcpu.ar[2] = 0xFFFF_FFFF; // an ALET-specification exception if AR translation ran
    let ifetch = |g: &Guest, ar| {
        translate_address_with_key(&g.vm, &g.vcpu, V_SEG, ar, InstructionFetch, AccessKey::ZERO)
            .map(|a| a.0)
    };
    // IEP not enabled: the primary frame.
    for as_bits in [AS_PRIMARY, AS_SECONDARY, AS_AR] {
        g.vcpu.psw.mask = PSW_DAT64 | as_bits;
        assert_eq!(ifetch(&g, 2).unwrap(), 0x80_0ABC, "{as_bits:#x}");
    }
    // Operand accesses still use their own space.
    g.vcpu.psw.mask = PSW_DAT64 | AS_SECONDARY;
    assert_eq!(g.xlate(V_SEG, Fetch).unwrap(), 0x81_0ABC);
    g.vcpu.psw.mask = PSW_DAT64 | AS_HOME;
    assert_eq!(ifetch(&g, 2).unwrap(), 0x83_0ABC);
    // IEP on: primary-space fetch of an IEP page.
    g.vcpu.cr[0] |= cr0::IEP;
    for (as_bits, teid_as) in [(AS_PRIMARY, 0), (AS_AR, 1), (AS_SECONDARY, 2)] {
        g.vcpu.psw.mask = PSW_DAT64 | as_bits;
        assert_pgm(ifetch(&g, 2), 0x04, 0x0080_9884 | teid_as, 2);
        // Operand fetches never see IEP.
        assert!(g.xlate(V_SEG, Fetch).is_ok());
    }
    g.vcpu.psw.mask = PSW_DAT64;
    assert_eq!(g.fetch(V_SEG, 0, 1, 0).unwrap(), [0]);
    g.store(V_SEG, 0, &[1], 0).unwrap();
    // Without facility 130 there is no IEP.
    let mut g2 = Guest::with_slots(&[(0, MEM)], &[8, 78]);
    let p = g2.space(Segment, 0x10_0000, 3, 0, |b| {
        b.map(
            V_SEG & !0xFFF,
            0x80_0000,
            0x1000,
            Size4K,
            LeafFlags {
                protect: false,
                iep: true,
            },
        )
    });
    g2.dat_on(p);
    g2.vcpu.cr[0] |= cr0::IEP;
    assert_eq!(ifetch(&g2, 0).unwrap(), 0x80_0ABC);
    // IEP on a 1 MiB frame.
    g.vcpu.psw.mask = PSW_DAT64;
    g.set_entry(
        V_SEG,
        s390_gaccess::dat::TableLevel::Segment,
        0x100_0000 | 0x400 | 0x100,
    );
    assert_pgm(ifetch(&g, 0), 0x04, 0x0080_9884, 0);
    g.set_entry(
        V_SEG,
        s390_gaccess::dat::TableLevel::Segment,
        0x100_0000 | 0x400,
    );
    assert_eq!(ifetch(&g, 0).unwrap(), 0x100_9ABC);
}
