//! Prefixing (kernel-semantics.md §4 prefix register, §5.7): where it applies (DAT-off
//! addresses, real-space ASCEs, 4 KiB PTE frames, ART reads) and where it does not
//! (table entries, 1 MiB and 2 GiB frames).

mod common;

use common::*;
use s390_gaccess::dat::Asce;
use s390_gaccess::dat::builder::LeafFlags;

const P: u32 = 0x4_0000;

fn dat_off(prefix: u32) -> Guest {
    let mut g = Guest::new();
    g.vcpu.prefix = prefix;
    g
}

/// §5.7: r < 0x2000 → r + P; P <= r < P + 0x2000 → r - P; else r (DAT off).
#[test]
fn s5_7_rules_dat_off() {
    let g = dat_off(P);
    for (real, abs) in [
        (0x0, 0x4_0000),
        (0x1FFF, 0x4_1FFF),
        (0x2000, 0x2000),
        (0x3_FFFF, 0x3_FFFF),
        (0x4_0000, 0x0),
        (0x4_1FFF, 0x1FFF),
        (0x4_2000, 0x4_2000),
    ] {
        assert_eq!(g.xlate(real, Fetch).unwrap(), abs, "{real:#x}");
    }
}

/// §5.7: the comparison is on the full 64-bit value: addresses with high bits set are
/// never prefixed.
#[test]
fn s5_7_full_64_bit_comparison() {
    let top = 0xFFFF_FFFF_FFFF_F000;
    let g = {
        let mut g = Guest::with_slots(
            &[(0, MEM), (1 << 32, 0x4_0000 + 0x2000), (top, 0x1000)],
            &[],
        );
        g.vcpu.prefix = P;
        g
    };
    assert_eq!(g.xlate((1 << 32) | 0x10, Fetch).unwrap(), (1 << 32) | 0x10);
    assert_eq!(
        g.xlate((1 << 32) | 0x4_0010, Fetch).unwrap(),
        (1 << 32) | 0x4_0010
    );
    assert_eq!(g.xlate(top | 0x10, Fetch).unwrap(), top | 0x10);
}

/// §4: the effective prefix is PX & 0x7FFF_E000 (8 KiB aligned, below 2^31).
#[test]
fn s4_effective_prefix_mask() {
    let g = dat_off(0x4_1FFF);
    assert_eq!(g.xlate(0x10, Fetch).unwrap(), 0x4_0010);
    let g = dat_off(0x8004_0000);
    assert_eq!(g.xlate(0x10, Fetch).unwrap(), 0x4_0010);
    let g = dat_off(0);
    assert_eq!(g.xlate(0x10, Fetch).unwrap(), 0x10);
    assert_eq!(g.xlate(0x2010, Fetch).unwrap(), 0x2010);
}

/// §5.7: logical accesses with DAT off move data at the prefixed address, fragment by
/// fragment (a fragment in 0..0x1FFF and one at 0x2000).
#[test]
fn s5_7_dat_off_access_prefixed_per_fragment() {
    let g = dat_off(P);
    let data: Vec<u8> = (0..32).collect();
    g.store(0x1FF0, 0, &data, 0).unwrap();
    assert_eq!(g.read(0x4_1FF0, 16), &data[..16]);
    assert_eq!(g.read(0x2000, 16), &data[16..]);
    assert_eq!(g.read(0x1FF0, 16), vec![0; 16]);
    // And the reverse direction: P + 0x1FF0 → 0x1FF0, P + 0x2000 unchanged.
    g.store(0x4_1FF0, 0, &data, 0).unwrap();
    assert_eq!(g.read(0x1FF0, 16), &data[..16]);
    assert_eq!(g.read(0x4_2000, 16), &data[16..]);
}

/// §5.7: a real-space ASCE's addresses are prefixed.
#[test]
fn s5_7_real_space_asce_prefixed() {
    let mut g = dat_off(P);
    g.dat_on(Asce(0x20));
    g.vcpu.prefix = P;
    g.store(0x100, 0, &[0xAB], 0).unwrap();
    assert_eq!(g.read(0x4_0100, 1), [0xAB]);
    assert_eq!(g.xlate(0x4_0100, Fetch).unwrap(), 0x100);
}

/// §5.7: 4 KiB PTE frames are real addresses: prefixed.
#[test]
fn s5_7_pte_frame_prefixed() {
    let mut g = Guest::new();
    let asce = g.space(Segment, TABLES, 3, 0, |b| {
        b.map(0x50_0000, 0x0, 0x2000, Size4K, LeafFlags::default())?;
        b.map(0x60_0000, P as u64, 0x2000, Size4K, LeafFlags::default())
    });
    g.dat_on(asce);
    g.vcpu.prefix = P;
    assert_eq!(g.xlate(0x50_0010, Fetch).unwrap(), 0x4_0010);
    assert_eq!(g.xlate(0x50_1010, Fetch).unwrap(), 0x4_1010);
    assert_eq!(g.xlate(0x60_0010, Fetch).unwrap(), 0x10);
    assert_eq!(g.xlate(0x60_1010, Fetch).unwrap(), 0x1010);
    g.store(0x50_0010, 0, &[0xCD], 0).unwrap();
    assert_eq!(g.read(0x4_0010, 1), [0xCD]);
}

/// §5.7: DAT table entries are not prefixed; 1 MiB and 2 GiB frames are absolute.
#[test]
fn s5_7_not_for_tables_and_large_frames() {
    // Segment table at absolute 0 (inside the real prefix-swapped area).
    let mut g = Guest::with_slots(&[(0, MEM), (0x8000_0000, 0x10_0000)], &[8, 78]);
    g.vcpu.prefix = P;
    g.write_u64(0, 0x400); // SX 0: 1 MiB frame at absolute 0
    g.write_u64(8, 0x10_0000 | 0x400); // SX 1: 1 MiB frame at 0x10_0000
    g.dat_on(Asce(3));
    assert_eq!(g.xlate(0x10, Fetch).unwrap(), 0x10);
    assert_eq!(g.xlate(0x4_0010, Fetch).unwrap(), 0x4_0010);
    assert_eq!(g.report(0x10, Fetch).trace.entries()[0].address.0, 0);
    // 2 GiB frame with RFAA 0.
    g.write_u64(0x2000, 0x400 | 0x4); // RTTE, RTX 0: 2 GiB frame at 0
    g.vcpu.cr[1] = 0x2000 | 0x4 | 3;
    assert_eq!(g.xlate(0x10, Fetch).unwrap(), 0x10);
    assert_eq!(g.xlate(0x4_1000, Store).unwrap(), 0x4_1000);
}
