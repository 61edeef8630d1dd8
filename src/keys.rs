//! Storage keys and access keys (§4, §8.3, §10).
#![forbid(unsafe_code)]

use crate::exception::AccessMode;

/// A storage-key byte: ACC (bits 0-3), F (bit 4), R (bit 5), C (bit 6); bit 7 is 0.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StorageKey(pub u8);

impl StorageKey {
    /// Access-control bits (`_PAGE_ACC_BITS`).
    pub const ACC_MASK: u8 = 0xF0;
    /// Fetch-protection bit (`_PAGE_FP_BIT`).
    pub const FETCH_PROTECTION: u8 = 0x08;
    /// Reference bit (`_PAGE_REFERENCED`).
    pub const REFERENCE: u8 = 0x04;
    /// Change bit (`_PAGE_CHANGED`).
    pub const CHANGE: u8 = 0x02;
    /// The access-control value that the storage-protection override exempts
    /// (`PAGE_SPO_ACC`).
    pub const SPO_ACC: u8 = 9;

    /// Build a key from its fields.
    pub const fn new(acc: u8, fetch_protected: bool, referenced: bool, changed: bool) -> Self {
        Self(
            ((acc & 0xF) << 4)
                | if fetch_protected {
                    Self::FETCH_PROTECTION
                } else {
                    0
                }
                | if referenced { Self::REFERENCE } else { 0 }
                | if changed { Self::CHANGE } else { 0 },
        )
    }
    /// Access-control bits as a value 0..15.
    pub const fn acc(self) -> u8 {
        self.0 >> 4
    }
    /// Fetch-protection bit.
    pub const fn fetch_protected(self) -> bool {
        self.0 & Self::FETCH_PROTECTION != 0
    }
    /// Reference bit.
    pub const fn referenced(self) -> bool {
        self.0 & Self::REFERENCE != 0
    }
    /// Change bit.
    pub const fn changed(self) -> bool {
        self.0 & Self::CHANGE != 0
    }
}

impl core::fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "StorageKey(acc={}, f={}, r={}, c={})",
            self.acc(),
            self.fetch_protected() as u8,
            self.referenced() as u8,
            self.changed() as u8
        )
    }
}

/// An access key 0..15 (the memop's `key` byte once validated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct AccessKey(u8);

impl AccessKey {
    /// Key 0, which every check permits.
    pub const ZERO: Self = Self(0);

    /// A validated access key; `None` above 15.
    pub const fn new(key: u8) -> Option<Self> {
        if key <= 15 { Some(Self(key)) } else { None }
    }
    /// The key value.
    pub const fn value(self) -> u8 {
        self.0
    }
    /// Whether this is key 0.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The basic rule of key-controlled protection (§8.3), as MVCOS and CS apply it:
    /// permitted iff key 0, key == ACC, or a fetch from a page without fetch protection.
    pub const fn permits(self, storage_key: StorageKey, mode: AccessMode) -> bool {
        self.0 == 0
            || self.0 == storage_key.acc()
            || (!mode.is_store() && !storage_key.fetch_protected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // §8.3 basic key rule.
    #[test]
    fn basic_key_rule() {
        let k = |v| AccessKey::new(v).unwrap();
        let acc9 = StorageKey::new(9, false, false, false);
        let acc9f = StorageKey::new(9, true, false, false);
        assert!(k(0).permits(acc9f, AccessMode::Store));
        assert!(k(9).permits(acc9f, AccessMode::Store));
        assert!(k(2).permits(acc9, AccessMode::Fetch));
        assert!(!k(2).permits(acc9, AccessMode::Store));
        assert!(!k(2).permits(acc9f, AccessMode::Fetch));
        assert!(AccessKey::new(16).is_none());
    }

    #[test]
    fn key_fields() {
        let s = StorageKey(0x9e);
        assert_eq!(
            (s.acc(), s.fetch_protected(), s.referenced(), s.changed()),
            (9, true, true, true)
        );
        assert_eq!(StorageKey::new(1, true, false, true), StorageKey(0x1a));
    }
}
