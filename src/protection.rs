//! Low-address protection and key-controlled protection with the fetch- and
//! storage-protection overrides, as the kernel decides them (§8).
#![forbid(unsafe_code)]

use crate::exception::AccessMode;
use crate::keys::{AccessKey, StorageKey};
use crate::vcpu::{Vcpu, cr0};

/// `is_low_address` (§5.5): effective addresses 0..511 and 4096..4607.
#[inline]
pub const fn is_low_address(ga: u64) -> bool {
    ga & !0x11FF == 0
}

/// `low_address_protection_enabled` (§8.1): CR0.35 and not (DAT on and private space).
/// `private_space` is the P bit of the ASCE selected for the access.
#[inline]
pub fn low_address_protection_enabled(vcpu: &Vcpu, private_space: bool) -> bool {
    vcpu.cr0(cr0::LOW_ADDRESS_PROTECTION) && !(vcpu.psw.dat() && private_space)
}

/// `fetch_prot_override_applicable` (§8.3): a fetch, CR0.38, and not (DAT on and
/// private space).
#[inline]
pub fn fetch_protection_override_applicable(
    vcpu: &Vcpu,
    mode: AccessMode,
    private_space: bool,
) -> bool {
    !mode.is_store()
        && vcpu.cr0(cr0::FETCH_PROTECTION_OVERRIDE)
        && !(vcpu.psw.dat() && private_space)
}

/// `fetch_prot_override_applies` (§8.3, §11 item 9): the whole fragment lies in 0..2047.
#[inline]
pub const fn fetch_protection_override_applies(ga: u64, len: u64) -> bool {
    ga < 2048 && ga + len <= 2048
}

/// `storage_prot_override_applicable` (§8.3): CR0.39.
#[inline]
pub fn storage_protection_override_applicable(vcpu: &Vcpu) -> bool {
    vcpu.cr0(cr0::STORAGE_PROTECTION_OVERRIDE)
}

/// `storage_prot_override_applies` (§8.3): the frame's ACC is 9.
#[inline]
pub const fn storage_protection_override_applies(storage_key: StorageKey) -> bool {
    storage_key.acc() == StorageKey::SPO_ACC
}

/// The override state of one logical access, decided once per memop (§5.4 step 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overrides {
    /// FPO is applicable.
    pub fpo: bool,
    /// SPO is applicable.
    pub spo: bool,
}

impl Overrides {
    /// Decide the overrides for an access.
    pub fn for_access(vcpu: &Vcpu, mode: AccessMode, private_space: bool) -> Self {
        Self {
            fpo: fetch_protection_override_applicable(vcpu, mode, private_space),
            spo: storage_protection_override_applicable(vcpu),
        }
    }

    /// The vCPU key rule (`vcpu_check_access_key_gpa`, §8.3) for a fragment at
    /// effective address `ga` of `len` bytes on a frame with `storage_key`. The real
    /// access (FPO path, keyed access, key-9 retry, §5.8) reaches the same verdict.
    #[inline]
    pub fn permits(
        &self,
        key: AccessKey,
        storage_key: StorageKey,
        mode: AccessMode,
        ga: u64,
        len: u64,
    ) -> bool {
        if key.is_zero() || key.value() == storage_key.acc() {
            return true;
        }
        if !mode.is_store()
            && (!storage_key.fetch_protected()
                || (self.fpo && fetch_protection_override_applies(ga, len)))
        {
            return true;
        }
        self.spo && storage_protection_override_applies(storage_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // §5.5 low-address ranges.
    #[test]
    fn low_addresses() {
        for a in [0, 511, 4096, 4607] {
            assert!(is_low_address(a), "{a}");
        }
        for a in [512, 4095, 4608, 8192, 0x1_0000_0000] {
            assert!(!is_low_address(a), "{a}");
        }
    }

    // §8.1: LAP is off with DAT on and a private ASCE, on otherwise when CR0.35 is set.
    #[test]
    fn lap_condition() {
        let mut v = Vcpu::new();
        v.cr[0] |= cr0::LOW_ADDRESS_PROTECTION;
        assert!(low_address_protection_enabled(&v, true)); // DAT off: ASCE is 0x20
        v.psw.mask |= crate::vcpu::Psw::DAT;
        assert!(!low_address_protection_enabled(&v, true));
        assert!(low_address_protection_enabled(&v, false));
        v.cr[0] = 0;
        assert!(!low_address_protection_enabled(&v, false));
    }

    // §8.3: the whole fragment must lie in 0..2047.
    #[test]
    fn fpo_granularity() {
        assert!(fetch_protection_override_applies(0, 2048));
        assert!(!fetch_protection_override_applies(0, 2049));
        assert!(!fetch_protection_override_applies(2048, 1));
        assert!(fetch_protection_override_applies(2047, 1));
    }

    // §8.3 vCPU key rule, with each override.
    #[test]
    fn vcpu_key_rule() {
        let k2 = AccessKey::new(2).unwrap();
        let acc9f = StorageKey::new(9, true, false, false);
        let none = Overrides {
            fpo: false,
            spo: false,
        };
        let fpo = Overrides {
            fpo: true,
            spo: false,
        };
        let spo = Overrides {
            fpo: false,
            spo: true,
        };
        assert!(!none.permits(k2, acc9f, AccessMode::Fetch, 0, 8));
        assert!(fpo.permits(k2, acc9f, AccessMode::Fetch, 0, 8));
        assert!(!fpo.permits(k2, acc9f, AccessMode::Fetch, 0, 4096));
        assert!(!fpo.permits(k2, acc9f, AccessMode::Store, 0, 8));
        assert!(spo.permits(k2, acc9f, AccessMode::Store, 0, 8));
        let acc3f = StorageKey::new(3, true, false, false);
        assert!(!spo.permits(k2, acc3f, AccessMode::Fetch, 0, 8));
        assert!(none.permits(AccessKey::ZERO, acc3f, AccessMode::Store, 0, 8));
    }
}
