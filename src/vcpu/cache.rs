//! The memory of a vCPU's translation cache: direct-mapped entries of raw words and the
//! storage generation they were filled at. What the words mean, when an entry may
//! answer a translation and how it is filled is [`crate::tlb`]'s business; this module
//! only stores them, so that the vCPU state does not depend on the translation layer.
//!
//! Plain cells, no atomics: a vCPU is used by one thread at a time, as the kernel's
//! vcpu ioctls are (they hold the vcpu mutex), so `Vcpu` is `Send` but not `Sync`;
//! threads that share one take a lock, as the kernel does. That keeps a hit to plain
//! loads (a sequence counter that made sharing safe cost a third of a hit, see
//! docs/performance.md).
#![forbid(unsafe_code)]

use crate::addr::set_bits;
use core::cell::Cell;

/// Number of entries (a power of two).
pub const ENTRIES: usize = 512;

/// `Snapshot::ctl` bit of a filled entry ([`crate::tlb`] sets it in every key).
pub(crate) const VALID: u64 = 1;

/// The generation of a cache that holds nothing: storage generations start at 1.
const NO_GENERATION: u64 = 0;

/// One cached walk: the input besides the generation (`page`, `asce`, `ctl`) and the
/// result (`abs`). Half a cache line.
#[derive(Default)]
#[repr(align(32))]
pub(crate) struct Entry {
    /// The effective address of the page (its low 12 bits zero).
    page: Cell<u64>,
    /// The ASCE, all 64 bits.
    asce: Cell<u64>,
    /// The walk context's control word, with [`VALID`] (meaning: [`crate::tlb`]); 0 in
    /// an empty entry.
    ctl: Cell<u64>,
    /// The absolute page address and, below it, the result's flags ([`crate::tlb`]).
    abs: Cell<u64>,
}

/// A copy of an entry's fields.
#[derive(Clone, Copy, Default)]
pub(crate) struct Snapshot {
    pub(crate) page: u64,
    pub(crate) asce: u64,
    pub(crate) ctl: u64,
    pub(crate) abs: u64,
}

impl Entry {
    /// The fields.
    #[inline(always)]
    pub(crate) fn read(&self) -> Snapshot {
        Snapshot {
            page: self.page.get(),
            asce: self.asce.get(),
            ctl: self.ctl.get(),
            abs: self.abs.get(),
        }
    }

    fn write(&self, v: &Snapshot) {
        self.page.set(v.page);
        self.asce.set(v.asce);
        self.ctl.set(v.ctl);
        self.abs.set(v.abs);
    }
}

/// A vCPU's translation cache (see [`crate::tlb`] for how it translates). Invisible: two vCPUs
/// that differ only in their caches compare equal.
pub struct TranslationCache {
    entries: Box<[Entry; ENTRIES]>,
    /// The storage generation every filled entry was filled at ([`NO_GENERATION`] when
    /// none is filled, and always while the cache is off).
    generation: Cell<u64>,
    /// One bit per entry filled since the generation was set, so that starting a new
    /// generation clears only those (its cost is paid once per fill).
    filled: [Cell<u64>; ENTRIES / 64],
    enabled: bool,
}

impl TranslationCache {
    /// An empty, enabled cache.
    pub fn new() -> Self {
        Self {
            entries: Box::new(core::array::from_fn(|_| Entry::default())),
            generation: Cell::new(NO_GENERATION),
            filled: Default::default(),
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
        self.clear_filled();
        self.generation.set(NO_GENERATION);
    }

    /// Empty the entries filled since the generation was last set.
    fn clear_filled(&self) {
        for (w, word) in self.filled.iter().enumerate() {
            for b in set_bits(word.replace(0)) {
                self.entries[w * 64 + b as usize].write(&Snapshot::default());
            }
        }
    }

    /// The number of filled entries (for tests and statistics; entries of an old
    /// generation are counted until the next fill drops them).
    pub fn len(&self) -> usize {
        self.filled
            .iter()
            .map(|w| w.get().count_ones() as usize)
            .sum()
    }

    /// Whether no entry is filled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The generation the filled entries are valid at ([`NO_GENERATION`], which no
    /// storage has, if none).
    #[inline(always)]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// The entry at `index` (below [`ENTRIES`]).
    #[inline(always)]
    pub(crate) fn entry(&self, index: usize) -> &Entry {
        &self.entries[index]
    }

    /// Store in entry `index` the result of a walk that began at storage generation
    /// `generation`. Entries of any other generation are dropped first: only one
    /// generation is ever current.
    pub(crate) fn store(&self, index: usize, generation: u64, v: &Snapshot) {
        if self.generation.get() != generation {
            self.clear_filled();
            self.generation.set(generation);
        }
        self.entries[index].write(v);
        let w = &self.filled[index / 64];
        w.set(w.get() | 1 << (index % 64));
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
