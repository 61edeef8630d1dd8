//! Shared set-up for the engine tests: a small guest (memory, one or more DAT spaces
//! built with `SpaceBuilder`, a vCPU with DAT on and CR1 = the ASCE), plus helpers to
//! look at program-interruption records.
//!
//! Expected values in the tests are literals taken from `kernel-semantics.md`; the
//! helpers here only drive the public API and unpack its results.
#![allow(dead_code, unused_imports)]

use s390_gaccess::access::{Buffer, access_logical, check_logical};
use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::dat::builder::{BuildError, LeafFlags, SpaceBuilder, entry_address};
use s390_gaccess::dat::{Asce, DesignationType, FrameSize, TableLevel};
use s390_gaccess::exception::{AccessError, AccessMode, PgmInfo};
use s390_gaccess::keys::{AccessKey, StorageKey};
use s390_gaccess::translate::{TranslationReport, translate, translate_address_with_key};
use s390_gaccess::vcpu::{Psw, Vcpu, cr0};
use s390_gaccess::vm::{Facilities, Vm};

pub use DesignationType::{RegionFirst, RegionSecond, RegionThird, Segment};
pub use FrameSize::{Size1M, Size2G, Size4K};
pub use TableLevel::Page;
pub use s390_gaccess::exception::AccessMode::{Fetch, InstructionFetch, Store};

/// Where the standard spaces put their tables.
pub const TABLES: u64 = 0x10_0000;
/// The standard 4 KiB frame (absolute) the standard addresses map to.
pub const FRAME: u64 = 0x80_0000;
/// Standard guest memory size: 32 MiB at absolute 0.
pub const MEM: u64 = 32 << 20;

/// Standard virtual addresses per designation type, each with every index that the
/// type uses non-zero: RFX=5, RSX=6, RTX=7, SX=8, PX=9, BX=0xABC (§5.6 field table).
pub const V_RF: u64 = 0x00A0_1803_8080_9ABC;
pub const V_RS: u64 = 0x0000_1803_8080_9ABC;
pub const V_RT: u64 = 0x0000_0003_8080_9ABC;
pub const V_SEG: u64 = 0x0000_0000_0080_9ABC;

/// The standard address of a designation type.
pub const fn std_virt(dt: DesignationType) -> u64 {
    match dt {
        RegionFirst => V_RF,
        RegionSecond => V_RS,
        RegionThird => V_RT,
        Segment => V_SEG,
    }
}

/// All four designation types, top first.
pub const ALL_DT: [DesignationType; 4] = [RegionFirst, RegionSecond, RegionThird, Segment];

/// PSW masks: DAT on, 64-bit.
pub const PSW_DAT64: u64 = Psw::DAT | Psw::EA | Psw::BA;
/// PSW AS values (bits 16-17) in place.
pub const AS_PRIMARY: u64 = 0;
pub const AS_AR: u64 = 1 << 46;
pub const AS_SECONDARY: u64 = 2 << 46;
pub const AS_HOME: u64 = 3 << 46;

/// A guest: the VM and one vCPU.
pub struct Guest {
    pub vm: Vm,
    pub vcpu: Vcpu,
}

impl Guest {
    /// `MEM` bytes at 0, the default facilities (8, 78, 130, 131), a vCPU after reset
    /// (DAT off, 64-bit).
    pub fn new() -> Self {
        Self::with_slots(&[(0, MEM)], &[8, 78, 130, 131])
    }

    /// Memslots `(start, size)` and the given facility numbers.
    pub fn with_slots(slots: &[(u64, u64)], facilities: &[u32]) -> Self {
        let vm = Vm::new(slots, Facilities::from_numbers(facilities)).expect("memslots");
        Self {
            vm,
            vcpu: Vcpu::new(),
        }
    }

    /// Build a space with `f` and return its ASCE. Nothing about the vCPU changes.
    pub fn space(
        &self,
        dt: DesignationType,
        origin: u64,
        tl: u8,
        flags: u64,
        f: impl FnOnce(&mut SpaceBuilder<'_>) -> Result<(), BuildError>,
    ) -> Asce {
        let mut b = SpaceBuilder::new(self.vm.storage(), dt, origin, tl, flags).expect("space");
        f(&mut b).expect("mapping");
        b.asce()
    }

    /// DAT on, 64-bit, primary space, CR1 = `asce`, CR0.40 (EDAT) on.
    pub fn dat_on(&mut self, asce: Asce) {
        self.vcpu.psw.mask = PSW_DAT64;
        self.vcpu.cr[1] = asce.0;
        self.vcpu.cr[0] |= cr0::EDAT;
    }

    /// The standard guest of a designation type: `MEM` bytes, tables at `TABLES`
    /// (TL 3), `std_virt(dt)`'s page mapped to `FRAME`, DAT on with CR1 = the ASCE.
    pub fn standard(dt: DesignationType) -> Self {
        Self::standard_with(dt, 0, &[8, 78, 130, 131])
    }

    /// Like [`standard`](Self::standard) with ASCE flags and facilities.
    pub fn standard_with(dt: DesignationType, asce_flags: u64, facilities: &[u32]) -> Self {
        let mut g = Self::with_slots(&[(0, MEM)], facilities);
        let v = std_virt(dt) & !0xFFF;
        let asce = g.space(dt, TABLES, 3, asce_flags, |b| {
            b.map(v, FRAME, 0x1000, Size4K, LeafFlags::default())
        });
        g.dat_on(asce);
        g
    }

    /// The ASCE in CR1.
    pub fn asce(&self) -> Asce {
        Asce(self.vcpu.cr[1])
    }

    /// Absolute address of the entry the walk for `virt` reads at `level` (CR1's space).
    pub fn entry_addr(&self, virt: u64, level: TableLevel) -> u64 {
        entry_address(self.vm.storage(), self.asce(), virt, level)
            .expect("entry address")
            .0
    }

    /// The entry for `virt` at `level`.
    pub fn entry(&self, virt: u64, level: TableLevel) -> u64 {
        self.read_u64(self.entry_addr(virt, level))
    }

    /// Overwrite the entry for `virt` at `level`.
    pub fn set_entry(&self, virt: u64, level: TableLevel, value: u64) {
        self.write_u64(self.entry_addr(virt, level), value);
    }

    /// Set and clear bits of the entry for `virt` at `level`.
    pub fn edit_entry(&self, virt: u64, level: TableLevel, set: u64, clear: u64) {
        let e = self.entry(virt, level);
        self.set_entry(virt, level, (e & !clear) | set);
    }

    pub fn read_u64(&self, abs: u64) -> u64 {
        self.vm
            .storage()
            .read_u64(AbsoluteAddress(abs))
            .expect("read in memory")
    }

    pub fn write_u64(&self, abs: u64, value: u64) {
        self.vm
            .storage()
            .write_u64(AbsoluteAddress(abs), value)
            .expect("write in memory");
    }

    pub fn write(&self, abs: u64, data: &[u8]) {
        self.vm
            .storage()
            .write(AbsoluteAddress(abs), data)
            .expect("write in memory");
    }

    pub fn read(&self, abs: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        self.vm
            .storage()
            .read(AbsoluteAddress(abs), &mut b)
            .expect("read in memory");
        b
    }

    /// `translate_address_with_key` with ar 0 and key 0, reduced to the address.
    pub fn xlate(&self, ga: u64, mode: AccessMode) -> Result<u64, AccessError> {
        self.xlate_ar(ga, 0, mode)
    }

    /// `translate_address_with_key` with key 0.
    pub fn xlate_ar(&self, ga: u64, ar: u8, mode: AccessMode) -> Result<u64, AccessError> {
        translate_address_with_key(&self.vm, &self.vcpu, ga, ar, mode, AccessKey::ZERO).map(|a| a.0)
    }

    /// `translate_address_with_key` with a key.
    pub fn xlate_key(&self, ga: u64, mode: AccessMode, key: u8) -> Result<u64, AccessError> {
        translate_address_with_key(&self.vm, &self.vcpu, ga, 0, mode, akey(key)).map(|a| a.0)
    }

    /// The step-by-step `translate` report (ar 0, key 0).
    pub fn report(&self, ga: u64, mode: AccessMode) -> TranslationReport {
        translate(&self.vm, &self.vcpu, ga, 0, mode, AccessKey::ZERO)
    }

    /// A logical store of `data` at `ga` through `ar` with `key`.
    pub fn store(&self, ga: u64, ar: u8, data: &[u8], key: u8) -> Result<(), AccessError> {
        access_logical(&self.vm, &self.vcpu, ga, ar, Buffer::Store(data), akey(key))
    }

    /// A logical fetch of `len` bytes at `ga` through `ar` with `key`.
    pub fn fetch(&self, ga: u64, ar: u8, len: usize, key: u8) -> Result<Vec<u8>, AccessError> {
        let mut b = vec![0; len];
        access_logical(
            &self.vm,
            &self.vcpu,
            ga,
            ar,
            Buffer::Fetch(&mut b),
            akey(key),
        )?;
        Ok(b)
    }

    /// A CHECK_ONLY logical access.
    pub fn check(
        &self,
        ga: u64,
        ar: u8,
        len: u64,
        mode: AccessMode,
        key: u8,
    ) -> Result<(), AccessError> {
        check_logical(&self.vm, &self.vcpu, ga, ar, len, mode, akey(key))
    }

    /// The storage key of the frame holding `abs`.
    pub fn skey(&self, abs: u64) -> StorageKey {
        self.vm
            .storage_key(AbsoluteAddress(abs))
            .expect("key in memory")
    }

    /// Set the storage key of the frame holding `abs` (keys are put in use first).
    pub fn set_skey(&self, abs: u64, key: u8) {
        self.vm.enable_keys();
        self.vm
            .set_storage_key(AbsoluteAddress(abs), StorageKey(key))
            .expect("key in memory");
    }

    /// Whether the frame holding `abs` has the reference bit.
    pub fn referenced(&self, abs: u64) -> bool {
        self.skey(abs).referenced()
    }

    /// Whether the frame holding `abs` has the change bit.
    pub fn changed(&self, abs: u64) -> bool {
        self.skey(abs).changed()
    }

    /// Clear R and C of every frame in `[start, start + len)`.
    pub fn clear_rc(&self, start: u64, len: u64) {
        let mut a = start & !0xFFF;
        while a < start + len {
            self.vm
                .storage()
                .update_key(AbsoluteAddress(a), |k| k & !0x06)
                .expect("in memory");
            a += 0x1000;
        }
    }
}

impl Default for Guest {
    fn default() -> Self {
        Self::new()
    }
}

/// An access key.
pub fn akey(key: u8) -> AccessKey {
    AccessKey::new(key).expect("key 0..15")
}

/// The program-interruption record of an error; panics on an errno.
pub fn pgm(r: Result<impl core::fmt::Debug, AccessError>) -> PgmInfo {
    match r {
        Err(AccessError::Program(p)) => {
            assert_eq!(p.code.0, p.info.code, "code and record disagree");
            p.info
        }
        other => panic!("expected a program interruption, got {other:?}"),
    }
}

/// Assert a program interruption with exactly this code, TEID and exception access id
/// (op access id and flags 0).
#[track_caller]
pub fn assert_pgm(
    r: Result<impl core::fmt::Debug, AccessError>,
    code: u16,
    teid: u64,
    exc_access_id: u8,
) {
    let info = pgm(r);
    assert_eq!(
        info,
        PgmInfo {
            code,
            teid: s390_gaccess::exception::Teid(teid),
            exc_access_id,
            ..PgmInfo::default()
        },
        "expected code {code:#x} teid {teid:#018x} aid {exc_access_id}"
    );
}

/// Assert a bare program interruption: the code and nothing else (§9.3: 0x05, 0x12,
/// 0x28).
#[track_caller]
pub fn assert_bare(r: Result<impl core::fmt::Debug, AccessError>, code: u16) {
    assert_pgm(r, code, 0, 0);
}

/// The ALET `install_art` puts in the access register: ALESN 0x5A, ALEN 2.
pub const ART_ALET: u32 = 0x005A_0002;
/// ALE word-0 bit: fetch-only (bit 6).
pub const ALE_FETCH_ONLY: u64 = 1 << 57;

/// A minimal access-register-translation set-up (§5.3): DUCT at real 0x3000 (CR2),
/// its ALD at 0x3010 (ALO 0x80: list at 0x4000, ALL 3), the ALE of ALEN 2 at 0x4020
/// (ALESN 0x5A, word 0 OR-ed with `ale_w0_extra`) pointing at an ASTE at 0x5000
/// (ASTESN 0x1234_5678, no authority table) whose ASCE is `asce`. AR `ar` gets
/// [`ART_ALET`].
pub fn install_art(g: &mut Guest, ar: usize, asce: u64, ale_w0_extra: u64) {
    g.vcpu.cr[2] = 0x3000;
    g.write(0x3010, &((0x80u32 << 7) | 3).to_be_bytes());
    g.write_u64(0x4020, (0x5A << 48) | ale_w0_extra);
    g.write_u64(0x4028, ((0x5000 / 64) << 38) | 0x1234_5678);
    g.write_u64(0x5000, 0);
    g.write_u64(0x5008, asce);
    g.write_u64(0x5010, 0x1234_5678);
    g.vcpu.ar[ar] = ART_ALET;
}
