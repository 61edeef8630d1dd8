//! Access-register translation, step by step (kernel-semantics.md §5.2 AR row, §5.3,
//! §5.3.1, §8.4, §9.3 for codes 0x28-0x2D, §10.3 for ART structures, §11 item 12).
//!
//! Layout of `art_guest()` (all addresses real = absolute with prefix 0):
//!
//! | what | where |
//! |---|---|
//! | primary space (CR1), V_SEG → 0x80_0000 | segment table 0x10_0000 |
//! | secondary space (CR7), V_SEG → 0x81_0000 | 0x14_0000 |
//! | AR space (ASTE D1), V_SEG → 0x82_0000 | 0x18_0000 |
//! | DUCT (CR2) | 0x3000; ALD at 0x3010: ALO 0x80 (AL at 0x4000), ALL 3 |
//! | PASTE (CR5) | 0x3800; ALD at 0x3810: ALO 0xE0 (AL at 0x7000), ALL 0 |
//! | ALE, ALEN 2 (DU list) | 0x4020: ALESN 0x5A, ASTEO 0x140, ASTESN 0x1234_5678 |
//! | ALE, ALEN 0 (PASTE list) | 0x7000: ALESN 0x11, same ASTE |
//! | ASTE | 0x5000: ATO 0x1800 (table at 0x6000), ATL 1, D1 = AR-space ASCE |
//!
//! AR5 = 0x005A_0002 (DU list, ALESN 0x5A, ALEN 2); AR6 = 0x0111_0000 (PASTE list).

mod common;

use common::*;
use s390_gaccess::dat::builder::LeafFlags;
use s390_gaccess::exception::{AccessError, Errno};

const ALET_DU: u32 = 0x005A_0002;
const ALET_PASTE: u32 = 0x0111_0000;
const ALE_DU: u64 = 0x4020;
const ASTE: u64 = 0x5000;
const AUTH: u64 = 0x6000;
const AR_FRAME: u64 = 0x82_0000;

fn write_u32(g: &Guest, abs: u64, v: u32) {
    g.write(abs, &v.to_be_bytes());
}

/// ALD: ALO in bits 1-24, ALL in bits 25-31.
fn ald(alo: u32, all: u32) -> u32 {
    (alo << 7) | all
}

/// ALE word 0: I bit 0, FO bit 6, P bit 7, ALESN bits 8-15, ALEAX bits 16-31.
fn ale_w0(invalid: bool, fetch_only: bool, private: bool, alesn: u64, aleax: u64) -> u64 {
    ((invalid as u64) << 63)
        | ((fetch_only as u64) << 57)
        | ((private as u64) << 56)
        | (alesn << 48)
        | (aleax << 32)
}

/// ALE word 1: ASTEO (address / 64) in bits 0-25, ASTESN in bits 32-63.
fn ale_w1(aste_addr: u64, astesn: u64) -> u64 {
    ((aste_addr / 64) << 38) | astesn
}

/// ASTE word 0: I bit 0, ATO (address / 4) bits 1-29, ATL bits 48-59.
fn aste_d0(invalid: bool, ato_addr: u64, atl: u64) -> u64 {
    ((invalid as u64) << 63) | ((ato_addr / 4) << 34) | (atl << 4)
}

fn write_ale(g: &Guest, at: u64, w0: u64, w1: u64) {
    g.write_u64(at, w0);
    g.write_u64(at + 8, w1);
}

fn write_aste(g: &Guest, at: u64, d0: u64, asce: u64, astesn: u64) {
    g.write_u64(at, d0);
    g.write_u64(at + 8, asce);
    g.write_u64(at + 16, 0xDEAD_BEEF_0000_0000 | astesn);
}

fn art_guest() -> Guest {
    art_guest_with(&[(0, MEM)])
}

fn art_guest_with(slots: &[(u64, u64)]) -> Guest {
    let mut g = Guest::with_slots(slots, &[8, 78, 130, 131]);
    let map = |frame| {
        move |b: &mut s390_gaccess::dat::builder::SpaceBuilder<'_>| {
            b.map(V_SEG & !0xFFF, frame, 0x1000, Size4K, LeafFlags::default())
        }
    };
    let primary = g.space(Segment, 0x10_0000, 3, 0, map(0x80_0000));
    let secondary = g.space(Segment, 0x14_0000, 3, 0, map(0x81_0000));
    let ar_space = g.space(Segment, 0x18_0000, 3, 0, map(AR_FRAME));
    g.dat_on(primary);
    g.vcpu.psw.mask |= AS_AR;
    g.vcpu.cr[7] = secondary.0;
    g.vcpu.cr[2] = 0x3000;
    g.vcpu.cr[5] = 0x3800;
    write_u32(&g, 0x3010, ald(0x80, 3));
    write_u32(&g, 0x3810, ald(0xE0, 0));
    write_ale(
        &g,
        ALE_DU,
        ale_w0(false, false, false, 0x5A, 0),
        ale_w1(ASTE, 0x1234_5678),
    );
    write_ale(
        &g,
        0x7000,
        ale_w0(false, false, false, 0x11, 0),
        ale_w1(ASTE, 0x1234_5678),
    );
    write_aste(&g, ASTE, aste_d0(false, AUTH, 1), ar_space.0, 0x1234_5678);
    g.vcpu.ar[5] = ALET_DU;
    g.vcpu.ar[6] = ALET_PASTE;
    g
}

/// §5.3 step 17, §5.2 AR row: in AR mode the ASCE is the ASTE's D1.
#[test]
fn s5_3_step17_asce_from_aste() {
    let g = art_guest();
    assert_eq!(g.xlate_ar(V_SEG, 5, Fetch).unwrap(), AR_FRAME + 0xABC);
    assert_eq!(g.xlate_ar(V_SEG, 5, Store).unwrap(), AR_FRAME + 0xABC);
    let r = g.report(V_SEG, Fetch);
    assert_eq!(r.asce.unwrap().0, g.vcpu.cr[1], "ar 0 is primary");
}

/// §5.3 step 1: ar >= 16 → -EINVAL.
#[test]
fn s5_3_step1_ar_16_is_einval() {
    let g = art_guest();
    assert_eq!(
        g.xlate_ar(V_SEG, 16, Fetch),
        Err(AccessError::Errno(Errno::Einval))
    );
    assert_eq!(
        g.xlate_ar(V_SEG, 255, Store),
        Err(AccessError::Errno(Errno::Einval))
    );
}

/// §5.3 step 3: AR number 0 always means primary, whatever AR0 holds; ALET 0 in any
/// other AR means primary (§11 item 12).
#[test]
fn s5_3_step3_ar0_and_alet0_are_primary() {
    let mut g = art_guest();
    g.vcpu.ar[0] = 0xFFFF_FFFF; // would be an ALET-specification exception
    assert_eq!(g.xlate_ar(V_SEG, 0, Fetch).unwrap(), 0x80_0ABC);
    g.vcpu.ar[0] = ALET_DU;
    assert_eq!(g.xlate_ar(V_SEG, 0, Fetch).unwrap(), 0x80_0ABC);
    g.vcpu.ar[9] = 0;
    assert_eq!(g.xlate_ar(V_SEG, 9, Store).unwrap(), 0x80_0ABC);
    // Nothing was read for it.
    let r = s390_gaccess::translate::translate(&g.vm, &g.vcpu, V_SEG, 9, Fetch, akey(0));
    assert!(r.art.ald.is_none());
}

/// §5.3 step 4: ALET 1 means secondary (CR7).
#[test]
fn s5_3_step4_alet1_is_secondary() {
    let mut g = art_guest();
    g.vcpu.ar[3] = 1;
    assert_eq!(g.xlate_ar(V_SEG, 3, Fetch).unwrap(), 0x81_0ABC);
}

/// §5.3 step 5: any of ALET bits 0-6 → PGM 0x28, with no TEID and no access id
/// (§9.3, §11 item 11).
#[test]
fn s5_3_step5_alet_specification() {
    let mut g = art_guest();
    for bit in 0..7 {
        g.vcpu.ar[5] = ALET_DU | (0x8000_0000 >> bit);
        assert_bare(g.xlate_ar(V_SEG, 5, Fetch), 0x28);
        assert_bare(g.store(V_SEG, 5, &[1], 0), 0x28);
    }
    // ALET 2..: bit 7 (P) is not reserved.
    g.vcpu.ar[5] = ALET_PASTE;
    assert_eq!(g.xlate_ar(V_SEG, 5, Fetch).unwrap(), AR_FRAME + 0xABC);
}

/// §5.3 step 6: ALET.P selects CR5 (PASTE) rather than CR2 (DUCT); the origin is
/// masked with 0x7FFF_FFC0.
#[test]
fn s5_3_step6_list_origin_and_mask() {
    let mut g = art_guest();
    assert_eq!(g.xlate_ar(V_SEG, 6, Fetch).unwrap(), AR_FRAME + 0xABC);
    // The ALE of ALEN 0 on the DU list does not exist (ALESN 0 ≠ 0x11 there): AR6
    // really went through the PASTE.
    let r = s390_gaccess::translate::translate(&g.vm, &g.vcpu, V_SEG, 6, Fetch, akey(0));
    assert_eq!(r.art.ald.unwrap().0.0, 0x3810);
    assert_eq!(r.art.ale.unwrap().0.0, 0x7000);
    // High and low bits of CR2 and CR5 are masked off.
    g.vcpu.cr[2] = 0xFFFF_FFFF_8000_303F;
    g.vcpu.cr[5] = 0x1234_5678_8000_383F;
    assert_eq!(g.xlate_ar(V_SEG, 5, Fetch).unwrap(), AR_FRAME + 0xABC);
    assert_eq!(g.xlate_ar(V_SEG, 6, Fetch).unwrap(), AR_FRAME + 0xABC);
}

/// §5.3 step 7, §5.3.1, §5.7: the ALD is read at real origin + 16, prefixed.
#[test]
fn s5_3_step7_ald_read_is_real() {
    let mut g = art_guest();
    g.vcpu.prefix = 0x2_0000;
    g.vcpu.cr[2] = 0x40; // real 0x50 → absolute 0x2_0050
    write_u32(&g, 0x50, 0xFFFF_FFFF); // would fail if read unprefixed
    write_u32(&g, 0x2_0050, ald(0x80, 3));
    assert_eq!(g.xlate_ar(V_SEG, 5, Fetch).unwrap(), AR_FRAME + 0xABC);
}

/// §5.3 step 7, §5.3.1: the ALD outside memory → PGM 5 with no TEID, no access id.
#[test]
fn s5_3_step7_ald_outside_memory() {
    let mut g = art_guest();
    g.vcpu.cr[2] = 0x7FFF_FFC0;
    assert_bare(g.xlate_ar(V_SEG, 5, Fetch), 0x05);
}

/// §5.3 steps 8-9: ALEN / 8 > ALL → PGM 0x29; only the access id is recorded.
#[test]
fn s5_3_step9_alen_beyond_list_length() {
    let mut g = art_guest();
    // ALL = 3: ALEN 31 (31/8 = 3) is in the list, ALEN 32 is not.
    write_ale(
        &g,
        0x4000 + 31 * 16,
        ale_w0(false, false, false, 0x5A, 0),
        ale_w1(ASTE, 0x1234_5678),
    );
    g.vcpu.ar[5] = 0x005A_001F;
    assert_eq!(g.xlate_ar(V_SEG, 5, Fetch).unwrap(), AR_FRAME + 0xABC);
    g.vcpu.ar[5] = 0x005A_0020;
    assert_pgm(g.xlate_ar(V_SEG, 5, Fetch), 0x29, 0, 5);
    assert_pgm(g.store(V_SEG, 5, &[0], 0), 0x29, 0, 5);
    g.vcpu.ar[5] = 0x005A_FFFF;
    assert_pgm(g.xlate_ar(V_SEG, 5, Fetch), 0x29, 0, 5);
}

/// §5.3 step 10: an ALE address above 0x7FFF_FFFF → PGM 5, even when memory is there.
#[test]
fn s5_3_step10_ale_above_2g() {
    let mut g = art_guest_with(&[(0, MEM), (0x7FFF_F000, 0x2000)]);
    // ALO = 0xFF_FFFF (AL at 0x7FFF_FF80), ALL = 1.
    write_u32(&g, 0x3010, ald(0xFF_FFFF, 1));
    write_ale(
        &g,
        0x7FFF_FFF0,
        ale_w0(false, false, false, 0x5A, 0),
        ale_w1(ASTE, 0x1234_5678),
    );
    write_ale(
        &g,
        0x8000_0000,
        ale_w0(false, false, false, 0x5A, 0),
        ale_w1(ASTE, 0x1234_5678),
    );
    g.vcpu.ar[5] = 0x005A_0007; // ALE at 0x7FFF_FFF0
    assert_eq!(g.xlate_ar(V_SEG, 5, Fetch).unwrap(), AR_FRAME + 0xABC);
    g.vcpu.ar[5] = 0x005A_0008; // ALE at 0x8000_0000
    assert_bare(g.xlate_ar(V_SEG, 5, Fetch), 0x05);
}

/// §5.3 step 11, §5.3.1: the ALE is read at a real address (prefixed); outside memory
/// → PGM 5.
#[test]
fn s5_3_step11_ale_read_is_real() {
    let mut g = art_guest();
    g.vcpu.prefix = 0x2_0000;
    // AL at real 0x1000 → absolute 0x2_1000; ALEN 2 → 0x2_1020.
    write_u32(&g, 0x3010, ald(0x1000 / 128, 3));
    write_ale(
        &g,
        0x2_1020,
        ale_w0(false, false, false, 0x5A, 0),
        ale_w1(ASTE, 0x1234_5678),
    );
    assert_eq!(g.xlate_ar(V_SEG, 5, Fetch).unwrap(), AR_FRAME + 0xABC);
    // AL at 0x4000_0000: outside memory.
    write_u32(&g, 0x3010, ald(0x4000_0000 / 128, 3));
    assert_bare(g.xlate_ar(V_SEG, 5, Fetch), 0x05);
}

/// §5.3 step 12: ALE.I → PGM 0x29; ALESN mismatch → PGM 0x2A; I first.
#[test]
fn s5_3_step12_ale_invalid_and_sequence() {
    let g = art_guest();
    let w1 = ale_w1(ASTE, 0x1234_5678);
    write_ale(&g, ALE_DU, ale_w0(true, false, false, 0x5A, 0), w1);
    assert_pgm(g.xlate_ar(V_SEG, 5, Fetch), 0x29, 0, 5);
    write_ale(&g, ALE_DU, ale_w0(false, false, false, 0x5B, 0), w1);
    assert_pgm(g.xlate_ar(V_SEG, 5, Store), 0x2A, 0, 5);
    write_ale(&g, ALE_DU, ale_w0(true, false, false, 0x5B, 0), w1);
    assert_pgm(g.xlate_ar(V_SEG, 5, Fetch), 0x29, 0, 5);
    // ALE sequence is checked before the ASTE is even read.
    write_ale(
        &g,
        ALE_DU,
        ale_w0(false, false, false, 0x5B, 0),
        ale_w1(0x4000_0000, 0),
    );
    assert_pgm(g.xlate_ar(V_SEG, 5, Fetch), 0x2A, 0, 5);
}

/// §5.3 step 13, §5.3.1: the ASTE is read at real ASTEO*64 (prefixed); outside
/// memory → PGM 5.
#[test]
fn s5_3_step13_aste_read_is_real() {
    let mut g = art_guest();
    g.vcpu.prefix = 0x2_0000;
    let asce = g.read_u64(ASTE + 8);
    write_aste(&g, 0x2_1000, aste_d0(false, AUTH, 1), asce, 0x1234_5678);
    write_ale(
        &g,
        ALE_DU,
        ale_w0(false, false, false, 0x5A, 0),
        ale_w1(0x1000, 0x1234_5678),
    );
    assert_eq!(g.xlate_ar(V_SEG, 5, Fetch).unwrap(), AR_FRAME + 0xABC);
    write_ale(
        &g,
        ALE_DU,
        ale_w0(false, false, false, 0x5A, 0),
        ale_w1(0x4000_0000, 0x1234_5678),
    );
    assert_bare(g.xlate_ar(V_SEG, 5, Fetch), 0x05);
}

/// §5.3 step 14: ASTE.I → PGM 0x2B; ASTESN (low word of D2 only) mismatch → PGM
/// 0x2C; I first.
#[test]
fn s5_3_step14_aste_validity_and_sequence() {
    let g = art_guest();
    let asce = g.read_u64(ASTE + 8);
    write_aste(&g, ASTE, aste_d0(true, AUTH, 1), asce, 0x1234_5678);
    assert_pgm(g.xlate_ar(V_SEG, 5, Fetch), 0x2B, 0, 5);
    write_aste(&g, ASTE, aste_d0(false, AUTH, 1), asce, 0x1234_5679);
    assert_pgm(g.xlate_ar(V_SEG, 5, Store), 0x2C, 0, 5);
    write_aste(&g, ASTE, aste_d0(true, AUTH, 1), asce, 0x1234_5679);
    assert_pgm(g.xlate_ar(V_SEG, 5, Fetch), 0x2B, 0, 5);
    // The high word of D2 (the ALD) does not take part.
    write_aste(&g, ASTE, aste_d0(false, AUTH, 1), asce, 0x1234_5678);
    g.write_u64(ASTE + 16, 0x0000_0001_1234_5678);
    assert_eq!(g.xlate_ar(V_SEG, 5, Fetch).unwrap(), AR_FRAME + 0xABC);
}

/// Make the DU ALE private with the given ALEAX (and fetch-only if asked).
fn private_ale(g: &Guest, aleax: u64, fetch_only: bool) {
    write_ale(
        g,
        ALE_DU,
        ale_w0(false, fetch_only, true, 0x5A, aleax),
        ale_w1(ASTE, 0x1234_5678),
    );
}

/// §5.3 step 15: a private ALE whose ALEAX equals EAX needs no authority check (the
/// authority table is not read).
#[test]
fn s5_3_step15_private_ale_own_eax() {
    let mut g = art_guest();
    private_ale(&g, 0x123, false);
    g.vcpu.cr[8] = 0x123 << 16;
    assert_eq!(g.xlate_ar(V_SEG, 5, Fetch).unwrap(), AR_FRAME + 0xABC);
    let r = s390_gaccess::translate::translate(&g.vm, &g.vcpu, V_SEG, 5, Fetch, akey(0));
    assert!(r.art.authority.is_none());
    // A non-private ALE with another ALEAX needs no check either.
    write_ale(
        &g,
        ALE_DU,
        ale_w0(false, false, false, 0x5A, 0x999),
        ale_w1(ASTE, 0x1234_5678),
    );
    assert_eq!(g.xlate_ar(V_SEG, 5, Fetch).unwrap(), AR_FRAME + 0xABC);
}

/// §5.3 step 15: EAX / 16 > ATL → PGM 0x2D (access id only); EAX is CR8 bits 32-47.
#[test]
fn s5_3_step15_eax_beyond_authority_table() {
    let mut g = art_guest();
    private_ale(&g, 0x7777, false);
    // ATL = 1 covers EAX 0..31; the rest of CR8 is noise.
    g.vcpu.cr[8] = 0xFFFF_FFFF_0000_FFFF | (32 << 16);
    assert_pgm(g.xlate_ar(V_SEG, 5, Fetch), 0x2D, 0, 5);
    g.vcpu.cr[8] = 0xFFFF_FFFF_0000_FFFF | (31 << 16);
    g.write(AUTH + 31 / 4, &[0xFF]);
    assert_eq!(g.xlate_ar(V_SEG, 5, Fetch).unwrap(), AR_FRAME + 0xABC);
}

/// §5.3 step 15: the secondary-authority bit (0x40 >> 2*(EAX & 3)) of byte
/// ATO*4 + EAX/4 decides; the primary-authority bit alone is not enough.
#[test]
fn s5_3_step15_secondary_authority_bit() {
    let mut g = art_guest();
    private_ale(&g, 0x7777, false);
    for eax in 4u64..8 {
        g.vcpu.cr[8] = eax << 16;
        let sa = 0x40u8 >> (2 * (eax & 3));
        let pa = 0x80u8 >> (2 * (eax & 3));
        g.write(AUTH + 1, &[sa]);
        assert_eq!(
            g.xlate_ar(V_SEG, 5, Fetch).unwrap(),
            AR_FRAME + 0xABC,
            "eax {eax}"
        );
        g.write(AUTH + 1, &[!sa]);
        assert_pgm(g.xlate_ar(V_SEG, 5, Fetch), 0x2D, 0, 5);
        g.write(AUTH + 1, &[pa]);
        assert_pgm(g.xlate_ar(V_SEG, 5, Fetch), 0x2D, 0, 5);
    }
    // Explicit values: EAX 5 → byte 1, mask 0x10.
    g.vcpu.cr[8] = 5 << 16;
    g.write(AUTH + 1, &[0x10]);
    assert!(g.xlate_ar(V_SEG, 5, Fetch).is_ok());
}

/// §5.3 step 15, §5.3.1: the authority byte is read at a real address; outside memory
/// → PGM 5.
#[test]
fn s5_3_step15_authority_table_real_and_addressing() {
    let mut g = art_guest();
    private_ale(&g, 0x7777, false);
    g.vcpu.cr[8] = 2 << 16;
    g.vcpu.prefix = 0x2_0000;
    let asce = g.read_u64(ASTE + 8);
    // Authority table at real 0x100 → absolute 0x2_0100.
    write_aste(&g, ASTE, aste_d0(false, 0x100, 0), asce, 0x1234_5678);
    g.write(0x2_0100, &[0x04]);
    assert_eq!(g.xlate_ar(V_SEG, 5, Fetch).unwrap(), AR_FRAME + 0xABC);
    write_aste(&g, ASTE, aste_d0(false, 0x4000_0000, 0), asce, 0x1234_5678);
    assert_bare(g.xlate_ar(V_SEG, 5, Fetch), 0x05);
}

/// §5.3 step 16, §8.4: a fetch-only ALE with a store → PGM 4, type ALC: TEID with
/// address, FSI store, bits 60+61, AS 01, and the access id. Fetches pass.
#[test]
fn s5_3_step16_fetch_only_ale() {
    let g = art_guest();
    write_ale(
        &g,
        ALE_DU,
        ale_w0(false, true, false, 0x5A, 0),
        ale_w1(ASTE, 0x1234_5678),
    );
    assert_eq!(g.xlate_ar(V_SEG, 5, Fetch).unwrap(), AR_FRAME + 0xABC);
    assert_pgm(g.xlate_ar(V_SEG, 5, Store), 0x04, 0x0000_0000_0080_940D, 5);
    assert_pgm(
        g.store(V_SEG, 5, &[1, 2], 0),
        0x04,
        0x0000_0000_0080_940D,
        5,
    );
    assert_pgm(
        g.check(V_SEG, 5, 2, Store, 0),
        0x04,
        0x0000_0000_0080_940D,
        5,
    );
    assert_eq!(g.read(AR_FRAME + 0xABC, 2), [0, 0]);
}

/// §8.7 item 2: extended authority comes before ALC protection.
#[test]
fn s5_3_order_authority_before_alc() {
    let mut g = art_guest();
    private_ale(&g, 0x7777, true);
    g.vcpu.cr[8] = 1 << 16;
    g.write(AUTH, &[0]);
    assert_pgm(g.xlate_ar(V_SEG, 5, Store), 0x2D, 0, 5);
    g.write(AUTH, &[0x10]);
    assert_pgm(g.xlate_ar(V_SEG, 5, Store), 0x04, 0x0000_0000_0080_940D, 5);
}

/// §5.9 step 1, §5.10 item 3: CHECK_ONLY selects the ASCE with the raw address, so
/// the ALC TEID holds the un-masked address; the real access reports the effective one.
#[test]
fn s5_9_alc_teid_unmasked_in_check_only() {
    let mut g = art_guest();
    write_ale(
        &g,
        ALE_DU,
        ale_w0(false, true, false, 0x5A, 0),
        ale_w1(ASTE, 0x1234_5678),
    );
    g.vcpu.psw.mask &= !s390_gaccess::vcpu::Psw::EA; // 31-bit
    let raw = 0xFFFF_FFFF_8080_9ABC;
    assert_pgm(g.check(raw, 5, 1, Store, 0), 0x04, 0xFFFF_FFFF_8080_940D, 5);
    assert_pgm(g.store(raw, 5, &[1], 0), 0x04, 0x0000_0000_0080_940D, 5);
    assert_pgm(g.xlate_ar(raw, 5, Store), 0x04, 0x0000_0000_0080_940D, 5);
}

/// §5.3 "not implemented", §11 item 12: ALE reserved bits, unused ASTE bits, the ASCE
/// G bit and ASTE-instance fields raise nothing.
#[test]
fn s5_3_unimplemented_checks_raise_nothing() {
    let g = art_guest();
    let asce = g.read_u64(ASTE + 8) | 0x200; // G
    // ALE word 0 bits 1-5 and 32-63; word 1 bits 0 and 26-31.
    let w0 = ale_w0(false, false, false, 0x5A, 0) | 0x7C00_0000_0000_0000 | 0xFFFF_FFFF;
    let w1 = ale_w1(ASTE, 0x1234_5678) | (1 << 63) | 0x3F_0000_0000;
    write_ale(&g, ALE_DU, w0, w1);
    // ASTE word 0 bits 30-47 and 60-63, besides I, ATO and ATL.
    let d0 = aste_d0(false, AUTH, 1) | 0x3_FFFF_0000 | 0xF;
    write_aste(&g, ASTE, d0, asce, 0x1234_5678);
    g.write_u64(ASTE + 24, u64::MAX); // beyond the 24 bytes read (ASTE instance etc.)
    assert_eq!(g.xlate_ar(V_SEG, 5, Fetch).unwrap(), AR_FRAME + 0xABC);
}

/// §10.3, §11 item 15: the frames holding the ALD, ALE, ASTE and authority byte get
/// the reference bit, also in CHECK_ONLY.
#[test]
fn s10_3_art_structures_referenced() {
    let mut g = art_guest();
    private_ale(&g, 0x7777, false);
    g.vcpu.cr[8] = 0;
    g.write(AUTH, &[0x40]);
    for f in [0x3000, 0x4000, 0x5000, 0x6000] {
        assert!(!g.referenced(f));
    }
    g.check(V_SEG, 5, 8, Fetch, 0).unwrap();
    for f in [0x3000, 0x4000, 0x5000, 0x6000] {
        assert!(g.referenced(f), "{f:#x}");
        assert!(!g.changed(f));
    }
}

/// §10.3: on a failing AR translation, R is set on the structures read up to the
/// failure and not beyond.
#[test]
fn s10_3_art_structures_referenced_up_to_failure() {
    let g = art_guest();
    let asce = g.read_u64(ASTE + 8);
    write_aste(&g, ASTE, aste_d0(true, AUTH, 1), asce, 0x1234_5678);
    assert_pgm(g.xlate_ar(V_SEG, 5, Fetch), 0x2B, 0, 5);
    assert!(g.referenced(0x3000) && g.referenced(0x4000) && g.referenced(0x5000));
    assert!(!g.referenced(0x6000));
    // Nothing in the AR space's tables was read.
    assert!(!g.referenced(0x18_0000));
    let g = art_guest();
    write_ale(
        &g,
        ALE_DU,
        ale_w0(false, false, false, 0x5B, 0),
        ale_w1(ASTE, 0x1234_5678),
    );
    assert_pgm(g.check(V_SEG, 5, 1, Store, 0), 0x2A, 0, 5);
    assert!(g.referenced(0x3000) && g.referenced(0x4000));
    assert!(!g.referenced(0x5000));
}

/// §5.2: DAT off means ASCE 0x20 and no AR processing, whatever the AS bits and ARs.
#[test]
fn s5_2_dat_off_skips_ar_translation() {
    let mut g = art_guest();
    g.vcpu.psw.mask &= !s390_gaccess::vcpu::Psw::DAT;
    g.vcpu.ar[5] = 0xFFFF_FFFF;
    assert_eq!(g.xlate_ar(0x5000, 5, Store).unwrap(), 0x5000);
    let r = s390_gaccess::translate::translate(&g.vm, &g.vcpu, 0x5000, 5, Fetch, akey(0));
    assert_eq!(r.asce.unwrap().0, 0x20);
    assert!(r.art.ald.is_none());
    assert!(!g.referenced(0x3000));
}
