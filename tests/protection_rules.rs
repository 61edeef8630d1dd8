//! Protection mechanisms (kernel-semantics.md §8.1-§8.6, §10.1 default keys,
//! §11 items 7, 9, 14, 18).
//!
//! Storage keys are written as bytes: ACC << 4 | F 0x08. TEID bits: LA 0x80, KEYC 0x8,
//! ALC 0xC, DAT 0x4; FSI store 0x400, fetch 0x800.

mod common;

use common::*;
use s390_gaccess::access::{Buffer, access_absolute, check_absolute, cmpxchg_absolute};
use s390_gaccess::dat::builder::LeafFlags;
use s390_gaccess::dat::{Asce, TableLevel};
use s390_gaccess::exception::{AccessError, ProgramInterruptionCode};
use s390_gaccess::vcpu::{Psw, cr0};

/// Virtual 0..0x2000 → absolute 0x80_0000..0x80_2000 in a segment space (private if
/// asked), DAT on, LAP on.
fn lap_guest(private: bool) -> Guest {
    let mut g = Guest::new();
    let flags = if private { Asce::P } else { 0 };
    let asce = g.space(Segment, TABLES, 3, flags, |b| {
        b.map(0, 0x80_0000, 0x2000, Size4K, LeafFlags::default())
    });
    g.dat_on(asce);
    g.vcpu.cr[0] |= cr0::LOW_ADDRESS_PROTECTION;
    g
}

// ------------------------------------------------------------------------------------
// §8.1 low-address protection
// ------------------------------------------------------------------------------------

/// §8.1: LAP needs CR0 bit 35.
#[test]
fn s8_1_lap_needs_cr0_35() {
    let mut g = lap_guest(false);
    assert_pgm(g.store(0x10, 0, &[1], 0), 0x04, 0x480, 0);
    g.vcpu.cr[0] &= !cr0::LOW_ADDRESS_PROTECTION;
    g.store(0x10, 0, &[1], 0).unwrap();
    assert_eq!(g.read(0x80_0010, 1), [1]);
}

/// §8.1: DAT on with a private-space ASCE exempts from LAP.
#[test]
fn s8_1_private_space_exempt_with_dat_on() {
    let g = lap_guest(true);
    g.store(0x1010, 0, &[2], 0).unwrap();
    assert_eq!(g.read(0x80_1010, 1), [2]);
    g.check(0x10, 0, 1, Store, 0).unwrap();
}

/// §8.1: with DAT off the ASCE is 0x20 (P = 0), so LAP applies even if CR1 is
/// private.
#[test]
fn s8_1_dat_off_ignores_cr1_private() {
    let mut g = lap_guest(true);
    g.vcpu.psw.mask &= !Psw::DAT;
    assert_pgm(g.store(0x10, 0, &[1], 0), 0x04, 0x480, 0);
    assert_pgm(g.check(0x1100, 0, 1, Store, 0), 0x04, 0x1480, 0);
}

/// §8.1: in AR mode the ASTE's ASCE decides, not CR1.
#[test]
fn s8_1_ar_mode_uses_aste_asce() {
    let mut g = lap_guest(true); // CR1 private
    let public = g.space(Segment, 0x14_0000, 3, 0, |b| {
        b.map(0, 0x81_0000, 0x2000, Size4K, LeafFlags::default())
    });
    install_art(&mut g, 4, public.0, 0);
    g.vcpu.psw.mask |= AS_AR;
    assert_pgm(g.store(0x10, 4, &[1], 0), 0x04, 0x481, 4);
    // AR 0 is CR1, which is private.
    g.store(0x10, 0, &[1], 0).unwrap();
    // The other way round.
    let mut g = lap_guest(false);
    let private = g.space(Segment, 0x14_0000, 3, Asce::P, |b| {
        b.map(0, 0x81_0000, 0x2000, Size4K, LeafFlags::default())
    });
    install_art(&mut g, 4, private.0, 0);
    g.vcpu.psw.mask |= AS_AR;
    g.store(0x10, 4, &[3], 0).unwrap();
    assert_eq!(g.read(0x81_0010, 1), [3]);
    assert_pgm(g.store(0x10, 0, &[1], 0), 0x04, 0x481, 0);
}

/// §8.1, §11 item 14: a real-space ASCE with P = 1 and DAT on exempts from LAP too.
#[test]
fn s8_1_real_space_private_exempt() {
    let mut g = Guest::new();
    g.vcpu.cr[0] |= cr0::LOW_ADDRESS_PROTECTION;
    g.dat_on(Asce(Asce::R | Asce::P));
    g.store(0x10, 0, &[1], 0).unwrap();
    assert_eq!(g.read(0x10, 1), [1]);
    g.vcpu.cr[1] = Asce::R;
    assert_pgm(g.store(0x10, 0, &[1], 0), 0x04, 0x480, 0);
}

/// §8.1: stores only; LAP applies whatever the access key.
#[test]
fn s8_1_stores_only_any_key() {
    let g = lap_guest(false);
    assert!(g.fetch(0x10, 0, 8, 0).is_ok());
    assert!(g.check(0x1000, 0, 0x200, Fetch, 0).is_ok());
    g.set_skey(0x80_0000, 0x30);
    assert_pgm(g.store(0x10, 0, &[1], 3), 0x04, 0x480, 0);
    assert_pgm(g.check(0x10, 0, 1, Store, 3), 0x04, 0x480, 0);
    assert_pgm(g.check(0x10, 0, 1, Store, 5), 0x04, 0x480, 0);
}

/// §8.1, §8.7: LAP comes before DAT protection.
#[test]
fn s8_1_lap_before_dat_protection() {
    let g = lap_guest(false);
    g.edit_entry(0, Page, 0x200, 0);
    assert_pgm(g.store(0x10, 0, &[1], 0), 0x04, 0x480, 0);
    assert_pgm(g.store(0x400, 0, &[1], 0), 0x04, 0x404, 0);
}

/// §8.1, §8.6: absolute accesses and cmpxchg never apply LAP.
#[test]
fn s8_1_absolute_ops_ignore_lap() {
    let g = lap_guest(false);
    access_absolute(&g.vm, 0x10, Buffer::Store(&[7]), akey(0)).unwrap();
    assert_eq!(g.read(0x10, 1), [7]);
    check_absolute(&g.vm, 0x1000, 16, Store, akey(0)).unwrap();
    let mut old = [7u8];
    assert!(cmpxchg_absolute(&g.vm, 0x10, &mut old, &[8], akey(0)).unwrap());
}

// ------------------------------------------------------------------------------------
// §8.2 DAT protection
// ------------------------------------------------------------------------------------

/// §8.2, §8.7: DAT protection applies with a key too and comes before the key check.
#[test]
fn s8_2_dat_protection_with_keys() {
    let g = Guest::standard(Segment);
    g.edit_entry(V_SEG, Page, 0x200, 0);
    g.set_skey(FRAME, 0x30);
    assert_pgm(g.store(V_SEG, 0, &[1], 3), 0x04, 0x0080_9404, 0);
    assert_pgm(g.store(V_SEG, 0, &[1], 5), 0x04, 0x0080_9404, 0);
    assert_pgm(g.check(V_SEG, 0, 1, Store, 5), 0x04, 0x0080_9404, 0);
    assert!(g.fetch(V_SEG, 0, 1, 3).is_ok());
}

/// §8.2: DAT protection is honoured only with DAT on — with DAT off the tables are not
/// consulted at all.
#[test]
fn s8_2_no_dat_protection_with_dat_off() {
    let mut g = Guest::standard(Segment);
    g.edit_entry(V_SEG, TableLevel::Segment, 0x200, 0);
    g.vcpu.psw.mask &= !Psw::DAT;
    g.store(0x80_0000, 0, &[1], 0).unwrap();
    assert_eq!(g.read(0x80_0000, 1), [1]);
}

// ------------------------------------------------------------------------------------
// §8.3 key-controlled protection, FPO, SPO
// ------------------------------------------------------------------------------------

/// §8.3 basic rule through the vCPU paths: key 0, key == ACC, fetch with F = 0 pass;
/// fetch with F = 1 and store with key != ACC fail with KEYC.
#[test]
fn s8_3_basic_key_rule() {
    let g = Guest::new();
    g.set_skey(0x10_0000, 0x30); // ACC 3
    g.set_skey(0x11_0000, 0x38); // ACC 3, F
    for (a, key, mode, ok) in [
        (0x10_0000, 0, Store, true),
        (0x11_0000, 0, Fetch, true),
        (0x10_0000, 3, Store, true),
        (0x11_0000, 3, Fetch, true),
        (0x10_0000, 5, Fetch, true),
        (0x11_0000, 5, Fetch, false),
        (0x10_0000, 5, Store, false),
        (0x11_0000, 15, Store, false),
    ] {
        let teid = a | if mode == Store { 0x408 } else { 0x808 };
        let res = [
            g.xlate_key(a, mode, key).map(|_| ()),
            g.check(a, 0, 8, mode, key),
            if mode == Store {
                g.store(a, 0, &[1; 8], key)
            } else {
                g.fetch(a, 0, 8, key).map(|_| ())
            },
        ];
        for r in res {
            if ok {
                assert!(r.is_ok(), "{a:#x} key {key} {mode:?}");
            } else {
                assert_pgm(r, 0x04, teid, 0);
            }
        }
    }
}

/// §10.1: before keys are in use every frame has key 0: a store with a nonzero key
/// fails, a fetch passes.
#[test]
fn s10_1_default_keys() {
    let g = Guest::new();
    assert!(!g.vm.keys_in_use());
    assert_pgm(g.store(0x10_0000, 0, &[1], 5), 0x04, 0x10_0408, 0);
    assert!(g.fetch(0x10_0000, 0, 1, 5).is_ok());
    assert!(g.store(0x10_0000, 0, &[1], 0).is_ok());
}

/// A DAT-off guest with absolute page 0 and 1 fetch-protected (ACC 3, F) and CR0.38.
fn fpo_guest() -> Guest {
    let mut g = Guest::new();
    g.set_skey(0, 0x38);
    g.set_skey(0x1000, 0x38);
    g.vcpu.cr[0] |= cr0::FETCH_PROTECTION_OVERRIDE;
    g
}

/// §8.3 FPO, §11 item 9: with CR0.38 a fetch whose whole fragment lies in 0..2047
/// ignores fetch protection; a fragment reaching 2048 does not.
#[test]
fn s8_3_fpo_fragment_within_0_2047() {
    let mut g = fpo_guest();
    for (ga, len, ok) in [
        (0x0, 8, true),
        (0x7F8, 8, true),
        (0x0, 0x800, true),
        (0x7F8, 16, false),
        (0x800, 1, false),
        (0x0, 0x1000, false),
        (0x0, 0x801, false),
    ] {
        let r1 = g.fetch(ga, 0, len, 5).map(|_| ());
        let r2 = g.check(ga, 0, len as u64, Fetch, 5);
        for r in [r1, r2] {
            if ok {
                assert!(r.is_ok(), "{ga:#x}+{len:#x}");
            } else {
                assert_pgm(r, 0x04, 0x808, 0);
            }
        }
    }
    // Stores get no override.
    g.set_skey(0, 0x30);
    assert_pgm(g.store(0x10, 0, &[1], 5), 0x04, 0x408, 0);
    // Without CR0.38 there is no override.
    g.set_skey(0, 0x38);
    g.vcpu.cr[0] &= !cr0::FETCH_PROTECTION_OVERRIDE;
    assert_pgm(g.fetch(0x10, 0, 1, 5), 0x04, 0x808, 0);
}

/// §8.3 FPO: the test is on the effective address, not the absolute one.
#[test]
fn s8_3_fpo_uses_effective_address() {
    let mut g = fpo_guest();
    g.vcpu.psw.mask = Psw::BA; // 31-bit
    assert!(g.fetch(0x8000_0100, 0, 8, 5).is_ok());
    // DAT on: virtual 0x100 → absolute page 0x80_0000 (fetch-protected): override;
    // virtual 0x80_9100 → absolute 0x100: no override.
    let asce = g.space(Segment, TABLES, 3, 0, |b| {
        b.map(0, 0x80_0000, 0x1000, Size4K, LeafFlags::default())?;
        b.map(0x80_9000, 0, 0x1000, Size4K, LeafFlags::default())
    });
    g.dat_on(asce);
    g.set_skey(0x80_0000, 0x38);
    assert!(g.fetch(0x100, 0, 8, 5).is_ok());
    assert_pgm(g.fetch(0x80_9100, 0, 8, 5), 0x04, 0x0080_9808, 0);
    assert!(g.check(0x100, 0, 8, Fetch, 5).is_ok());
}

/// §8.3 FPO is not applicable with DAT on and a private ASCE; with DAT off CR1's P
/// does not matter.
#[test]
fn s8_3_fpo_private_space() {
    let mut g = fpo_guest();
    let asce = g.space(Segment, TABLES, 3, Asce::P, |b| {
        b.map(0, 0, 0x1000, Size4K, LeafFlags::default())
    });
    g.vcpu.cr[1] = asce.0;
    assert!(g.fetch(0x10, 0, 8, 5).is_ok());
    g.dat_on(asce);
    assert_pgm(g.fetch(0x10, 0, 8, 5), 0x04, 0x808, 0);
    assert_pgm(g.check(0x10, 0, 8, Fetch, 5), 0x04, 0x808, 0);
    assert_pgm(g.xlate_key(0x10, Fetch, 5), 0x04, 0x808, 0);
    g.vcpu.cr[1] &= !Asce::P;
    assert!(g.fetch(0x10, 0, 8, 5).is_ok());
    assert!(g.xlate_key(0x10, Fetch, 5).is_ok());
}

/// §8.3 SPO: with CR0.39 a frame with ACC 9 admits stores and fetches with any key,
/// private space or not; other ACC values get no override.
#[test]
fn s8_3_spo() {
    let mut g = Guest::standard_with(Segment, Asce::P, &[8]);
    g.set_skey(FRAME, 0x98); // ACC 9, F
    assert_pgm(g.store(V_SEG, 0, &[1], 5), 0x04, 0x0080_9408, 0);
    g.vcpu.cr[0] |= cr0::STORAGE_PROTECTION_OVERRIDE;
    g.store(V_SEG, 0, &[1], 5).unwrap();
    assert!(g.fetch(V_SEG, 0, 1, 5).is_ok());
    assert!(g.check(V_SEG, 0, 1, Store, 7).is_ok());
    assert!(g.xlate_key(V_SEG, Store, 7).is_ok());
    g.set_skey(FRAME, 0x88); // ACC 8
    assert_pgm(g.store(V_SEG, 0, &[1], 5), 0x04, 0x0080_9408, 0);
    assert_pgm(g.check(V_SEG, 0, 1, Fetch, 5), 0x04, 0x0080_9808, 0);
}

// ------------------------------------------------------------------------------------
// §8.4 access-list-controlled protection
// ------------------------------------------------------------------------------------

/// §8.4, §8.7: ALC protection is recognised before every per-page check (LAP,
/// translation, DAT protection, key).
#[test]
fn s8_4_alc_before_per_page_checks() {
    let mut g = lap_guest(false);
    let asce = g.asce().0;
    install_art(&mut g, 4, asce, ALE_FETCH_ONLY);
    g.vcpu.psw.mask |= AS_AR;
    assert_pgm(g.store(0x10, 4, &[1], 0), 0x04, 0x40D, 4);
    assert_pgm(g.store(0x10_0000, 4, &[1], 0), 0x04, 0x10_040D, 4);
    g.edit_entry(0x1800, Page, 0x200, 0);
    assert_pgm(g.store(0x1800, 4, &[1], 0), 0x04, 0x140D, 4);
    assert!(g.fetch(0x10, 4, 1, 0).is_ok());
}

// ------------------------------------------------------------------------------------
// §8.6 what each op honours
// ------------------------------------------------------------------------------------

/// §8.6, §11 item 18: absolute read/write honour the basic key rule only — no FPO, no
/// SPO, no LAP, no DAT.
#[test]
fn s8_6_absolute_ops_basic_key_rule_only() {
    let mut g = fpo_guest();
    g.vcpu.cr[0] |= cr0::STORAGE_PROTECTION_OVERRIDE | cr0::LOW_ADDRESS_PROTECTION;
    g.set_skey(0x2000, 0x90); // ACC 9
    g.set_skey(0x3000, 0x50); // ACC 5
    let pgm4 = Err(ProgramInterruptionCode::PROTECTION);
    let mut b = [0u8; 8];
    // FPO would admit this on the vCPU path.
    assert!(g.fetch(0x10, 0, 8, 5).is_ok());
    assert_eq!(
        access_absolute(&g.vm, 0x10, Buffer::Fetch(&mut b), akey(5)),
        pgm4
    );
    assert_eq!(check_absolute(&g.vm, 0x10, 8, Fetch, akey(5)), pgm4);
    // SPO would admit this on the vCPU path.
    assert!(g.store(0x2000, 0, &[1], 5).is_ok());
    assert_eq!(
        access_absolute(&g.vm, 0x2000, Buffer::Store(&[1]), akey(5)),
        pgm4
    );
    assert_eq!(check_absolute(&g.vm, 0x2000, 1, Store, akey(5)), pgm4);
    // The basic rule: key == ACC, key 0, fetch without F.
    access_absolute(&g.vm, 0x3000, Buffer::Store(&[1]), akey(5)).unwrap();
    access_absolute(&g.vm, 0x10, Buffer::Store(&[1]), akey(0)).unwrap();
    access_absolute(&g.vm, 0x2000, Buffer::Fetch(&mut b), akey(5)).unwrap();
}

/// §8.6, §7: cmpxchg honours the basic key rule only (key 0 or key == ACC): no FPO, no
/// SPO; on key failure `old` becomes zeros.
#[test]
fn s8_6_cmpxchg_key_rule() {
    let g = fpo_guest();
    g.set_skey(0x2000, 0x90);
    g.set_skey(0x3000, 0x50);
    g.write(0x2000, &[0xAA; 8]);
    let mut old = [0xAA; 8];
    let r = cmpxchg_absolute(&g.vm, 0x2000, &mut old, &[0xBB; 8], akey(5));
    assert_eq!(
        r,
        Err(AccessError::bare(ProgramInterruptionCode::PROTECTION))
    );
    assert_eq!(old, [0; 8]);
    let mut old = [0u8; 8];
    assert_eq!(
        cmpxchg_absolute(&g.vm, 0x10, &mut old, &[1; 8], akey(5)),
        Err(AccessError::bare(ProgramInterruptionCode::PROTECTION))
    );
    let mut old = [0u8; 8];
    assert_eq!(
        cmpxchg_absolute(&g.vm, 0x3000, &mut old, &[1; 8], akey(5)),
        Ok(true)
    );
}
