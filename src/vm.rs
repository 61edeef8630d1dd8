//! The guest machine: absolute storage, storage-key state and installed facilities
//! (§4, §10.1).
#![forbid(unsafe_code)]

use crate::addr::AbsoluteAddress;
use crate::keys::StorageKey;
use crate::storage::{GuestStorage, NotInMemory, StorageError};
use core::sync::atomic::{AtomicBool, Ordering};

/// A set of facility numbers (0..=255), as in STFLE's list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Facilities([u64; 4]);

impl Facilities {
    /// Facility 8: enhanced DAT 1.
    pub const EDAT1: u32 = 8;
    /// Facility 78: enhanced DAT 2.
    pub const EDAT2: u32 = 78;
    /// Facility 130: instruction-execution protection.
    pub const IEP: u32 = 130;
    /// Facility 131: enhanced suppression on protection 2.
    pub const ESOP2: u32 = 131;

    /// No facilities.
    pub const fn none() -> Self {
        Self([0; 4])
    }
    /// The scenario default: EDAT-1, EDAT-2, IEP and ESOP-2.
    pub fn default_set() -> Self {
        Self::from_numbers(&[Self::EDAT1, Self::EDAT2, Self::IEP, Self::ESOP2])
    }
    /// The set of the given numbers; numbers above 255 are ignored.
    pub fn from_numbers(numbers: &[u32]) -> Self {
        let mut f = Self::none();
        for &n in numbers {
            f.insert(n);
        }
        f
    }
    /// Install facility `n` (ignored above 255).
    pub fn insert(&mut self, n: u32) {
        if n < 256 {
            self.0[(n / 64) as usize] |= 1 << (n % 64);
        }
    }
    /// Remove facility `n`.
    pub fn remove(&mut self, n: u32) {
        if n < 256 {
            self.0[(n / 64) as usize] &= !(1 << (n % 64));
        }
    }
    /// Whether facility `n` is installed (`test_kvm_facility`).
    pub const fn has(&self, n: u32) -> bool {
        n < 256 && self.0[(n / 64) as usize] & (1 << (n % 64)) != 0
    }
    /// The installed numbers in ascending order.
    pub fn numbers(&self) -> Vec<u32> {
        (0..256).filter(|&n| self.has(n)).collect()
    }
}

impl core::fmt::Debug for Facilities {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.numbers()).finish()
    }
}

/// A guest: storage, key state and facilities. Shared by all its vCPUs (`Sync`).
#[derive(Debug)]
pub struct Vm {
    storage: GuestStorage,
    facilities: Facilities,
    keys_in_use: AtomicBool,
    protected: bool,
}

impl Vm {
    /// A guest with the given memslots `(start, size)` and facilities; keys not in use.
    pub fn new(memslots: &[(u64, u64)], facilities: Facilities) -> Result<Self, StorageError> {
        Ok(Self {
            storage: GuestStorage::new(memslots)?,
            facilities,
            keys_in_use: AtomicBool::new(false),
            protected: false,
        })
    }

    /// A guest with one memslot of `size` bytes at 0 and the default facilities.
    pub fn with_memory(size: u64) -> Result<Self, StorageError> {
        Self::new(&[(0, size)], Facilities::default_set())
    }

    /// Guest absolute storage.
    #[inline]
    pub fn storage(&self) -> &GuestStorage {
        &self.storage
    }

    /// Installed facilities.
    #[inline]
    pub fn facilities(&self) -> &Facilities {
        &self.facilities
    }

    /// Whether facility `n` is installed.
    #[inline]
    pub fn has_facility(&self, n: u32) -> bool {
        self.facilities.has(n)
    }

    /// Whether this is a protected-virtualization guest (vm memops give -EINVAL, §3.1).
    pub fn is_protected(&self) -> bool {
        self.protected
    }

    /// Mark the guest protected or not.
    pub fn set_protected(&mut self, protected: bool) {
        self.protected = protected;
    }

    /// Whether the guest uses storage keys (§10.1).
    pub fn keys_in_use(&self) -> bool {
        self.keys_in_use.load(Ordering::Acquire)
    }

    /// Put storage keys in use as KVM does on the first SSKE or `KVM_S390_SET_SKEYS`:
    /// the first time, every frame's key is reset to 0 (§10.1, §13.1). Returns whether
    /// keys were newly enabled.
    pub fn enable_keys(&self) -> bool {
        if self.keys_in_use.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.storage.reset_keys();
        true
    }

    /// The storage key of the frame holding `addr`.
    #[inline]
    pub fn storage_key(&self, addr: AbsoluteAddress) -> Result<StorageKey, NotInMemory> {
        self.storage.key(addr)
    }

    /// Set the storage key of the frame holding `addr`.
    pub fn set_storage_key(
        &self,
        addr: AbsoluteAddress,
        key: StorageKey,
    ) -> Result<(), NotInMemory> {
        self.storage.set_key(addr, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities() {
        let f = Facilities::default_set();
        assert!(f.has(8) && f.has(78) && f.has(130) && f.has(131));
        assert!(!f.has(75) && !f.has(1000));
        assert_eq!(f.numbers(), vec![8, 78, 130, 131]);
    }

    // §10.1: enabling keys resets every frame's key once.
    #[test]
    fn enabling_keys_resets_them_once() {
        let vm = Vm::with_memory(0x4000).unwrap();
        vm.set_storage_key(AbsoluteAddress(0x1000), StorageKey(0x96))
            .unwrap();
        assert!(vm.enable_keys());
        assert_eq!(
            vm.storage_key(AbsoluteAddress(0x1000)).unwrap(),
            StorageKey(0)
        );
        vm.set_storage_key(AbsoluteAddress(0x1000), StorageKey(0x96))
            .unwrap();
        assert!(!vm.enable_keys());
        assert_eq!(
            vm.storage_key(AbsoluteAddress(0x1000)).unwrap(),
            StorageKey(0x96)
        );
    }
}
