//! The memory of a vCPU's translation cache: direct-mapped entries of raw words under
//! per-entry sequence counters. What the words mean, when an entry may answer a
//! translation and how it is filled is [`crate::tlb`]'s business; this module only
//! stores them, so that the vCPU state does not depend on the translation layer.
//!
//! A vCPU is normally used by one thread at a time, but `Vcpu` is `Sync` (tests share
//! one between threads), so the entries are relaxed atomics under a sequence counter:
//! a reader that races with a fill sees no entry, never a torn one. On x86 every one of
//! these atomics is a plain load or store.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering, fence};

/// Number of entries (a power of two).
pub const ENTRIES: usize = 256;

/// `Snapshot::ctl` bit of a filled entry ([`crate::tlb`] sets it in every key).
pub(crate) const VALID: u64 = 1;

/// One cached walk: the input (`page`, `asce`, `ctl`, `generation`) and the result,
/// under a sequence counter (odd while a fill is writing).
#[derive(Default)]
#[repr(align(64))]
pub(crate) struct Entry {
    seq: AtomicU64,
    /// The effective address >> 12.
    page: AtomicU64,
    /// The ASCE, all 64 bits.
    asce: AtomicU64,
    /// The walk context's control word, with [`VALID`] (meaning: [`crate::tlb`]).
    ctl: AtomicU64,
    /// The storage generation before the walk.
    generation: AtomicU64,
    /// The absolute page address and, below it, the result's flags ([`crate::tlb`]).
    abs: AtomicU64,
}

/// A consistent copy of an entry's fields.
#[derive(Clone, Copy, Default)]
pub(crate) struct Snapshot {
    pub(crate) page: u64,
    pub(crate) asce: u64,
    pub(crate) ctl: u64,
    pub(crate) generation: u64,
    pub(crate) abs: u64,
}

impl Entry {
    /// The fields if no fill raced with the read.
    #[inline(always)]
    pub(crate) fn read(&self) -> Option<Snapshot> {
        let r = Ordering::Relaxed;
        let s1 = self.seq.load(Ordering::Acquire);
        let snap = Snapshot {
            page: self.page.load(r),
            asce: self.asce.load(r),
            ctl: self.ctl.load(r),
            generation: self.generation.load(r),
            abs: self.abs.load(r),
        };
        fence(Ordering::Acquire);
        (s1 & 1 == 0 && self.seq.load(r) == s1).then_some(snap)
    }

    /// Replace the fields, unless another fill is writing them.
    pub(crate) fn write(&self, v: &Snapshot) {
        let r = Ordering::Relaxed;
        let s = self.seq.load(r);
        if s & 1 != 0
            || self
                .seq
                .compare_exchange(s, s.wrapping_add(1), Ordering::Acquire, r)
                .is_err()
        {
            return;
        }
        fence(Ordering::Release);
        self.page.store(v.page, r);
        self.asce.store(v.asce, r);
        self.ctl.store(v.ctl, r);
        self.generation.store(v.generation, r);
        self.abs.store(v.abs, r);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }
}

/// A vCPU's translation cache (see [`crate::tlb`] for how it translates). Invisible: two vCPUs
/// that differ only in their caches compare equal.
pub struct TranslationCache {
    entries: Box<[Entry; ENTRIES]>,
    enabled: bool,
}

impl TranslationCache {
    /// An empty, enabled cache.
    pub fn new() -> Self {
        Self {
            entries: Box::new(core::array::from_fn(|_| Entry::default())),
            enabled: true,
        }
    }

    /// An empty cache that is switched off: every translation walks.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::new()
        }
    }

    /// Whether the cache is used.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Switch the cache on or off (off also empties it).
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
        self.flush();
    }

    /// Drop every entry. Never needed for correctness.
    pub fn flush(&self) {
        for e in self.entries.iter() {
            e.write(&Snapshot::default());
        }
    }

    /// The number of valid-looking entries (for tests and statistics; entries of an
    /// old generation are counted until replaced).
    pub fn len(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.read().is_some_and(|s| s.ctl & VALID != 0))
            .count()
    }

    /// Whether no entry is filled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry at `index` (below [`ENTRIES`]).
    #[inline(always)]
    pub(crate) fn entry(&self, index: usize) -> &Entry {
        &self.entries[index]
    }
}

impl Default for TranslationCache {
    fn default() -> Self {
        Self::new()
    }
}

/// A clone starts empty (the cache is invisible, so this is a faithful copy).
impl Clone for TranslationCache {
    fn clone(&self) -> Self {
        let mut c = Self::new();
        c.enabled = self.enabled;
        c
    }
}

impl core::fmt::Debug for TranslationCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TranslationCache")
            .field("enabled", &self.enabled)
            .field("entries", &self.len())
            .finish()
    }
}

/// The cache is invisible: it never makes two vCPUs differ.
impl PartialEq for TranslationCache {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for TranslationCache {}
