//! Guests shared by the benchmarks: one VM per (designation type, frame size), a vCPU
//! with DAT on, and the data frames' storage keys set for the key cases.
//!
//! Layout: one memslot of 4 GiB at absolute 0 (lazily committed), tables from 1 MiB,
//! 4 KiB and 1 MiB data frames from 256 MiB, the 2 GiB frame at 2 GiB. Every mapping
//! covers `PAGES` consecutive 4 KiB pages from the space's base address, so a loop over
//! them misses a translation cache of fewer entries.
#![allow(dead_code)]

use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::dat::builder::{LeafFlags, SpaceBuilder};
use s390_gaccess::dat::{DesignationType, FrameSize};
use s390_gaccess::keys::{AccessKey, StorageKey};
use s390_gaccess::vcpu::{Psw, Vcpu};
use s390_gaccess::vm::{Facilities, Vm};

/// Pages mapped from each base address (16 MiB).
pub const PAGES: u64 = 4096;
/// Where the tables start.
pub const TABLES: u64 = 0x10_0000;
/// Absolute address of the 4 KiB and 1 MiB data frames.
pub const DATA: u64 = 0x1000_0000;
/// Absolute address of the 2 GiB data frame.
pub const DATA_2G: u64 = 0x8000_0000;
/// Offset of the translated byte in its page.
pub const OFFSET: u64 = 0x9AC;
/// The access-control value of the data frames.
pub const ACC: u8 = 5;

/// The four designation types, top first, with a name.
pub const DTS: [(DesignationType, &str); 4] = [
    (DesignationType::RegionFirst, "region-first"),
    (DesignationType::RegionSecond, "region-second"),
    (DesignationType::RegionThird, "region-third"),
    (DesignationType::Segment, "segment"),
];

/// The frame sizes a designation type can map (a 2 GiB frame needs a region-third
/// table, so not under a segment-table ASCE).
pub fn frames(dt: DesignationType) -> &'static [FrameSize] {
    match dt {
        DesignationType::Segment => &[FrameSize::Size4K, FrameSize::Size1M],
        _ => &[FrameSize::Size4K, FrameSize::Size1M, FrameSize::Size2G],
    }
}

/// The base virtual address of a designation type: every index the type uses is
/// non-zero (RFX 5, RSX 6, RTX 7, SX 8), 2 GiB aligned below the segment index.
pub const fn base(dt: DesignationType) -> u64 {
    match dt {
        DesignationType::RegionFirst => (5 << 53) | (6 << 42) | (7 << 31),
        DesignationType::RegionSecond => (6 << 42) | (7 << 31),
        DesignationType::RegionThird => 7 << 31,
        DesignationType::Segment => 0,
    }
}

/// The key cases of the benchmark matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyCase {
    /// Access key 0: no key check.
    NoKey,
    /// Key 5 on ACC-5 frames: the key is read and permits.
    KeyCheck,
    /// Key 2 fetching from ACC-5 frames with F=1: protection (PGM 4).
    FetchProtected,
}

impl KeyCase {
    pub const ALL: [KeyCase; 3] = [KeyCase::NoKey, KeyCase::KeyCheck, KeyCase::FetchProtected];
    pub fn name(self) -> &'static str {
        match self {
            KeyCase::NoKey => "no-key",
            KeyCase::KeyCheck => "key-check",
            KeyCase::FetchProtected => "fetch-protected",
        }
    }
    pub fn key(self) -> AccessKey {
        match self {
            KeyCase::NoKey => AccessKey::ZERO,
            KeyCase::KeyCheck => AccessKey::new(ACC).unwrap(),
            KeyCase::FetchProtected => AccessKey::new(2).unwrap(),
        }
    }
    fn storage_key(self) -> StorageKey {
        StorageKey::new(ACC, self == KeyCase::FetchProtected, false, false)
    }
}

/// A guest with one mapped space.
pub struct Guest {
    pub vm: Vm,
    pub vcpu: Vcpu,
    /// The first mapped virtual address (page aligned).
    pub base: u64,
    /// Absolute address of the first data frame.
    pub data: u64,
}

impl Guest {
    /// `PAGES` pages from `base(dt)` mapped with `frame`-sized frames; CR1 = the ASCE,
    /// CR0 with EDAT; the data frames carry the key of `keys`.
    pub fn new(dt: DesignationType, frame: FrameSize, keys: KeyCase) -> Self {
        let vm = Vm::new(&[(0, 4 << 30)], Facilities::default_set()).unwrap();
        let base = base(dt);
        let data = if frame == FrameSize::Size2G {
            DATA_2G
        } else {
            DATA
        };
        let asce = {
            let mut b = SpaceBuilder::new(vm.storage(), dt, TABLES, 3, 0).unwrap();
            let size = (PAGES * 4096).max(frame.bytes());
            b.map(base, data, size, frame, LeafFlags::default())
                .unwrap();
            b.asce()
        };
        vm.enable_keys();
        for i in 0..PAGES {
            vm.set_storage_key(AbsoluteAddress(data + i * 4096), keys.storage_key())
                .unwrap();
        }
        let mut vcpu = Vcpu::new();
        vcpu.psw.mask |= Psw::DAT;
        vcpu.cr[0] |= s390_gaccess::vcpu::cr0::EDAT;
        vcpu.cr[1] = asce.0;
        Self {
            vm,
            vcpu,
            base,
            data,
        }
    }
}

/// Turn the vCPU's translation cache on or off.
pub fn set_cache(vcpu: &mut Vcpu, on: bool) {
    vcpu.tlb.set_enabled(on);
}

/// Criterion settings: short runs (the machine is shared), overridable on the command
/// line (`--measurement-time`, `--warm-up-time`, `--sample-size`).
pub fn config() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_millis(800))
        .sample_size(30)
}
