//! A per-vCPU translation cache that nobody can see.
//!
//! KVM has no TLB: every access re-walks the DAT tables as they are in memory at that
//! moment (§5.6 last note, §11 item 2), and every walk sets R on the frames of the
//! entries it reads (§10.3, §11 item 15). This cache returns exactly what that walk
//! would return, and leaves storage keys exactly as it would leave them, under any
//! sequence of writes to table memory, key changes, register, prefix or facility
//! changes. It only saves the work.
//!
//! How:
//! * A miss runs the walk, which sets R **and a private table marker** (bit 7 of the
//!   key byte, architecturally 0 and masked out of every key read, see
//!   [`crate::storage`]) on every frame it reads an entry from.
//! * [`GuestStorage`] replaces its generation with a never-used value whenever a
//!   marked frame is written by any path (plain writes, memops, compare-and-swap,
//!   scenario and builder writes all go through it) or has its key changed (set,
//!   update, reset: the only ways R is ever cleared).
//! * An entry records the walk's complete input: the page of the effective address,
//!   the ASCE, EDAT-1, EDAT-2, IEP and the prefix. The cache records the generation
//!   read before the walks of all its entries: a fill after a walk that began at
//!   another generation first empties the entries of the old one. An entry hits only
//!   at that generation with the same input. The storage is part of the generation
//!   (values are unique across storages).
//! * So on a hit the tables are as the walk read them, and R is still set on every
//!   frame it read: nothing needs re-marking.
//! * Only successful walks are cached. The mode-dependent outcomes (DAT protection for
//!   a store, IEP for an instruction fetch) are re-derived from the cached bits by the
//!   walk's own code; the final addressing check cannot change, memslots being fixed.
//!
//! The cache is direct-mapped, [`ENTRIES`] entries of half a cache line each. Its memory
//! is vCPU state ([`crate::vcpu::cache`], which knows nothing of DAT); this module gives
//! the words their meaning and is the only one that reads or fills them.
#![forbid(unsafe_code)]

use crate::addr::{AbsoluteAddress, RealAddress};
use crate::dat::walk::{
    self, DatException, FrameSize, Translation, WalkContext, protection_checks,
};
use crate::exception::AccessMode;
use crate::storage::GuestStorage;
pub use crate::vcpu::cache::{ENTRIES, TranslationCache};
use crate::vcpu::cache::{Snapshot, VALID};

/// `Entry::abs` bits below the page address. Bits 0-2: the access modes
/// `protection_checks` refuses with these bits and this context, one bit per mode
/// ([`mode_bit`]), worked out once when the entry is filled, so that a hit tests one
/// bit instead of re-running the checks. Then the frame code and the two protection
/// bits.
const FRAME_SHIFT: u32 = 3;
const FRAME_MASK: u64 = 3 << FRAME_SHIFT;
const DAT_PROT: u64 = 1 << 5;
const IEP_PROT: u64 = 1 << 6;

/// The `Entry::abs` deny bit of an access mode: its discriminant, one of bits 0-2.
#[inline(always)]
const fn mode_bit(mode: AccessMode) -> u64 {
    mode as u64
}
const _: () = assert!(
    mode_bit(AccessMode::Fetch)
        | mode_bit(AccessMode::Store)
        | mode_bit(AccessMode::InstructionFetch)
        == 7
);

/// Whether `Entry::abs` word `abs` refuses `mode` (its [`mode_bit`] is set). The deny
/// bits are in the low byte: tested as a byte, against the mode in memory.
#[inline(always)]
const fn refuses(abs: u64, mode: AccessMode) -> bool {
    (abs as u8) & (mode_bit(mode) as u8) != 0
}

// An entry's `ctl` is the walk context's control word (prefix, EDAT-1, EDAT-2, IEP:
// everything besides the ASCE and the address that the walk's result depends on; the
// mode is re-derived, not cached). Its always-set bit is what marks a filled entry.
const _: () = assert!(WalkContext::ONE == VALID);

/// The entry for effective address `v`: consecutive pages get consecutive entries (so
/// the pages of one operation, up to 2 MiB, never evict each other), and the table
/// origin is folded in so that the same page of different spaces spreads out. Pages
/// 2 MiB apart in one space share an entry: folding the higher address bits in too
/// cost 0.1 ns of a 1.8 ns hit (docs/performance.md).
#[inline(always)]
fn index(v: u64, asce: u64) -> usize {
    (((v ^ asce) >> 12) as usize) & (ENTRIES - 1)
}

// The mode bits, the frame code and the flags are distinct bits below the page address.
const _: () = assert!(
    (IEP_PROT | DAT_PROT | FRAME_MASK) & 7 == 0
        && IEP_PROT & (DAT_PROT | FRAME_MASK) == 0
        && DAT_PROT & FRAME_MASK == 0
        && IEP_PROT < 0x1000
);

const fn frame_code(f: FrameSize) -> u64 {
    (match f {
        FrameSize::Size4K => 0,
        FrameSize::Size1M => 1,
        FrameSize::Size2G => 2,
    }) << FRAME_SHIFT
}

/// Frame size by code (a table lookup, cheaper than a match on the hit path).
const FRAMES: [FrameSize; 4] = [
    FrameSize::Size4K,
    FrameSize::Size1M,
    FrameSize::Size2G,
    FrameSize::Size2G,
];

#[inline(always)]
fn frame_of(code: u64) -> FrameSize {
    FRAMES[((code & FRAME_MASK) >> FRAME_SHIFT) as usize]
}

/// An entry's key: the walk's whole input and the generation, loaded before any
/// entry is read (see `crate::storage`). The generation is the cache's, not the
/// entry's: all filled entries share one.
#[derive(Clone, Copy)]
struct Key {
    /// The effective address (an entry holds its page: the byte index, bits 52-63,
    /// zero).
    address: u64,
    asce: u64,
    ctl: u64,
    generation: u64,
}

impl Key {
    #[inline(always)]
    fn of(storage: &GuestStorage, v: u64, ctx: &WalkContext) -> Self {
        Self {
            generation: storage.generation(),
            address: v,
            asce: ctx.asce.0,
            ctl: ctx.control(),
        }
    }

    /// The entry this key lives in.
    #[inline(always)]
    fn index(&self) -> usize {
        index(self.address, self.asce)
    }

    /// Whether entry `e` of `cache` was filled under this key.
    #[inline(always)]
    fn matches(&self, cache: &TranslationCache, e: &Snapshot) -> bool {
        cache.generation() == self.generation
            && (e.page ^ self.address) < 0x1000
            && e.asce == self.asce
            && e.ctl == self.ctl
    }
}

/// The `Translation` entry `e` gives for effective address `v`. The real address is
/// not stored: a large frame's is its absolute address, and a 4 KiB frame's is its
/// absolute address prefixed again (prefixing swaps two blocks, so it undoes itself),
/// with the prefix of the entry's control word.
#[inline(always)]
fn translation_of(e: &Snapshot, v: u64) -> Translation {
    let off = v & 0xFFF;
    let page = e.abs & !0xFFF;
    let frame = frame_of(e.abs);
    let real = match frame {
        FrameSize::Size4K => walk::prefixed(page, e.ctl & WalkContext::PREFIX),
        FrameSize::Size1M | FrameSize::Size2G => page,
    };
    Translation {
        address: AbsoluteAddress(page | off),
        real: RealAddress(real | off),
        frame,
        dat_protected: e.abs & DAT_PROT != 0,
        iep_protected: e.abs & IEP_PROT != 0,
    }
}

impl TranslationCache {
    /// Whether a translation of effective address `v` in context `ctx` would be
    /// answered from the cache now (no side effect; for tests and statistics).
    pub fn contains(&self, storage: &GuestStorage, v: u64, ctx: &WalkContext) -> bool {
        if !self.enabled() || ctx.asce.real_space() {
            return false;
        }
        let key = Key::of(storage, v, ctx);
        key.matches(self, &self.entry(key.index()).read())
    }

    /// The entry for `v` in context `ctx` if it answers this translation now (same
    /// input, same generation, mode not refused); otherwise what a miss needs. The
    /// whole hit path.
    #[inline(always)]
    fn lookup(&self, storage: &GuestStorage, v: u64, ctx: &WalkContext) -> Result<Snapshot, Key> {
        let key = Key::of(storage, v, ctx);
        let e = self.entry(key.index()).read();
        if key.matches(self, &e) && !refuses(e.abs, ctx.mode) {
            Ok(e)
        } else {
            Err(key)
        }
    }

    /// Translate effective address `v` in context `ctx` (§5.6): the result of
    /// [`walk::walk_referencing`], with its reference bits, from the cache when the
    /// same walk was cached at the current generation.
    ///
    /// The hit path is kept short: a cache that is off (it never fills an entry) and
    /// real-space designations (never cached) are found on the miss path; the mode's
    /// protection verdict is one bit of the entry.
    #[inline(always)]
    pub fn translate(
        &self,
        storage: &GuestStorage,
        v: u64,
        ctx: &WalkContext,
    ) -> Result<Translation, DatException> {
        match self.lookup(storage, v, ctx) {
            Ok(e) => Ok(translation_of(&e, v)),
            Err(key) => self.miss_translation(storage, v, ctx, key),
        }
    }

    /// [`translate`](Self::translate) reduced to the absolute address, which is all an
    /// access needs from a translation: a hit builds no [`Translation`], and the result
    /// comes back in two registers.
    #[inline(always)]
    pub fn translate_address(
        &self,
        storage: &GuestStorage,
        v: u64,
        ctx: &WalkContext,
    ) -> Result<AbsoluteAddress, DatException> {
        match self.lookup(storage, v, ctx) {
            // On a hit `v ^ e.page` is the byte index.
            Ok(e) => Ok(AbsoluteAddress((e.abs & !0xFFF) | (v ^ e.page))),
            Err(key) => self.miss_address(storage, v, ctx, key),
        }
    }

    /// [`miss`](Self::miss) for [`translate`](Self::translate): the one call a miss
    /// costs (the miss, the walk and the fill are inlined into it).
    #[inline(never)]
    fn miss_translation(
        &self,
        storage: &GuestStorage,
        v: u64,
        ctx: &WalkContext,
        key: Key,
    ) -> Result<Translation, DatException> {
        self.miss(storage, v, ctx, key)
    }

    /// [`miss`](Self::miss) for [`translate_address`](Self::translate_address), likewise
    /// one call.
    #[inline(never)]
    fn miss_address(
        &self,
        storage: &GuestStorage,
        v: u64,
        ctx: &WalkContext,
        key: Key,
    ) -> Result<AbsoluteAddress, DatException> {
        self.miss(storage, v, ctx, key).map(|t| t.address)
    }

    /// Not a usable hit: the cache is off, the ASCE is a real-space designation (no
    /// tables), the entry holds another walk, or it holds this walk and the mode is
    /// refused (the exception is re-derived by the walk's own checks).
    #[inline(always)]
    fn miss(
        &self,
        storage: &GuestStorage,
        v: u64,
        ctx: &WalkContext,
        key: Key,
    ) -> Result<Translation, DatException> {
        if !self.enabled() || ctx.asce.real_space() {
            return walk::walk_referencing(storage, v, ctx);
        }
        let e = self.entry(key.index()).read();
        if key.matches(self, &e) {
            protection_checks(ctx, e.abs & DAT_PROT != 0, e.abs & IEP_PROT != 0)?;
        }
        self.fill(storage, v, ctx, &key)
    }

    /// A miss: walk, marking the table frames, and cache a success.
    #[inline(always)]
    fn fill(
        &self,
        storage: &GuestStorage,
        v: u64,
        ctx: &WalkContext,
        key: &Key,
    ) -> Result<Translation, DatException> {
        let r = walk::walk_marking(storage, v, ctx);
        if let Ok(t) = &r {
            let deny = [
                AccessMode::Fetch,
                AccessMode::Store,
                AccessMode::InstructionFetch,
            ]
            .into_iter()
            .filter(|&m| {
                let c = ctx.with_mode(m);
                protection_checks(&c, t.dat_protected, t.iep_protected).is_err()
            })
            .fold(0, |d, m| d | mode_bit(m));
            let e = Snapshot {
                page: key.address & !0xFFF,
                asce: key.asce,
                ctl: key.ctl,
                abs: (t.address.0 & !0xFFF)
                    | frame_code(t.frame)
                    | if t.dat_protected { DAT_PROT } else { 0 }
                    | if t.iep_protected { IEP_PROT } else { 0 }
                    | deny,
            };
            self.store(key.index(), key.generation, &e);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dat::Asce;
    use crate::dat::builder::{LeafFlags, SpaceBuilder};
    use crate::dat::{DesignationType, TableLevel};
    use crate::exception::AccessMode;
    use crate::keys::StorageKey;

    /// A region-first space mapping `pages` 4 KiB pages at 0x40_0000 to 0x80_0000.
    fn space(storage: &GuestStorage, pages: u64) -> Asce {
        let mut b =
            SpaceBuilder::new(storage, DesignationType::RegionFirst, 0x10_0000, 3, 0).unwrap();
        b.map(
            0x40_0000,
            0x80_0000,
            pages << 12,
            FrameSize::Size4K,
            LeafFlags::default(),
        )
        .unwrap();
        b.asce()
    }

    fn ctx(asce: Asce, mode: AccessMode) -> WalkContext {
        WalkContext::new(asce, mode).with_edat(true, true)
    }

    #[test]
    fn hit_equals_walk_and_write_invalidates() {
        let s = GuestStorage::new(&[(0, 16 << 20)]).unwrap();
        let asce = space(&s, 2);
        let c = TranslationCache::new();
        let cx = ctx(asce, AccessMode::Fetch);
        let a = c.translate(&s, 0x40_0123, &cx).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c.translate(&s, 0x40_0123, &cx).unwrap(), a);
        assert_eq!(a.address, AbsoluteAddress(0x80_0123));
        // Every table frame carries R, never the marker, in a key read.
        let pte =
            crate::dat::builder::entry_address(&s, asce, 0x40_0000, TableLevel::Page).unwrap();
        assert_eq!(s.key(pte).unwrap(), StorageKey(StorageKey::REFERENCE));
        // Rewrite the PTE: the next translation sees the new frame.
        let g = s.generation();
        s.write_u64(pte, 0x90_0000).unwrap();
        assert_ne!(s.generation(), g);
        let b = c.translate(&s, 0x40_0123, &cx).unwrap();
        assert_eq!(b.address, AbsoluteAddress(0x90_0123));
        // A key write clearing R bumps the generation too.
        let g = s.generation();
        s.set_key(pte, StorageKey(0)).unwrap();
        assert_ne!(s.generation(), g);
        c.translate(&s, 0x40_0123, &cx).unwrap();
        assert!(s.key(pte).unwrap().referenced());
    }

    #[test]
    fn store_after_cached_fetch_sees_dat_protection() {
        let s = GuestStorage::new(&[(0, 16 << 20)]).unwrap();
        let asce = space(&s, 2);
        let pte =
            crate::dat::builder::entry_address(&s, asce, 0x40_0000, TableLevel::Page).unwrap();
        s.write_u64(pte, 0x80_0000 | 0x200).unwrap();
        let c = TranslationCache::new();
        assert!(
            c.translate(&s, 0x40_0000, &ctx(asce, AccessMode::Fetch))
                .is_ok()
        );
        let r = c.translate(&s, 0x40_0000, &ctx(asce, AccessMode::Store));
        assert_eq!(
            r,
            walk::walk(&s, 0x40_0000, &ctx(asce, AccessMode::Store)).result
        );
        assert!(r.is_err());
    }

    #[test]
    fn unmarked_writes_keep_entries() {
        let s = GuestStorage::new(&[(0, 16 << 20)]).unwrap();
        let asce = space(&s, 2);
        let c = TranslationCache::new();
        c.translate(&s, 0x40_0000, &ctx(asce, AccessMode::Fetch))
            .unwrap();
        let g = s.generation();
        // The data frame holds no tables.
        s.write_u64(AbsoluteAddress(0x80_0000), 1).unwrap();
        s.set_key(AbsoluteAddress(0x80_0000), StorageKey(0x50))
            .unwrap();
        assert_eq!(s.generation(), g);
    }

    /// The cache holds one generation: the first fill after a table write empties the
    /// entries filled before it, so that none of them can answer at the new
    /// generation (crate::tlb, §5.6 last note: the kernel re-walks every time).
    #[test]
    fn a_fill_at_a_new_generation_drops_the_old_entries() {
        let s = GuestStorage::new(&[(0, 16 << 20)]).unwrap();
        let asce = space(&s, 4);
        let c = TranslationCache::new();
        let cx = ctx(asce, AccessMode::Fetch);
        let old = [0x40_0000, 0x40_1000, 0x40_2000];
        for v in old {
            c.translate(&s, v, &cx).unwrap();
        }
        assert_eq!(c.len(), 3);
        let pte =
            crate::dat::builder::entry_address(&s, asce, 0x40_0000, TableLevel::Page).unwrap();
        s.write_u64(pte, 0x90_0000).unwrap();
        // A fill of another page at the new generation empties every older entry...
        c.translate(&s, 0x40_3000, &cx).unwrap();
        assert_eq!(c.len(), 1);
        for v in old {
            assert!(!c.contains(&s, v, &cx), "{v:#x}");
        }
        // ...and the rewritten page reads its new frame.
        let a = c.translate_address(&s, 0x40_0123, &cx).unwrap();
        assert_eq!(a, AbsoluteAddress(0x90_0123));
        assert_eq!(c.len(), 2);
    }

    /// A cache that is off answers nothing and keeps nothing, and the walk still sets
    /// R on the table frames (§10.3).
    #[test]
    fn an_off_cache_walks_every_time() {
        let s = GuestStorage::new(&[(0, 16 << 20)]).unwrap();
        let asce = space(&s, 2);
        let c = TranslationCache::disabled();
        let cx = ctx(asce, AccessMode::Fetch);
        let pte =
            crate::dat::builder::entry_address(&s, asce, 0x40_0000, TableLevel::Page).unwrap();
        for _ in 0..2 {
            s.set_key(pte, StorageKey(0)).unwrap();
            let t = c.translate(&s, 0x40_0123, &cx).unwrap();
            assert_eq!(t, walk::walk(&s, 0x40_0123, &cx).result.unwrap());
            assert!(s.key(pte).unwrap().referenced());
            assert!(c.is_empty());
            assert!(!c.contains(&s, 0x40_0123, &cx));
        }
    }

    /// A hit rebuilds the real address from the absolute one and the entry's prefix
    /// (§5.7): the whole `Translation` equals the walk's for frames in the low block,
    /// in the prefix block and elsewhere, and for large frames.
    #[test]
    fn hit_rebuilds_the_real_address() {
        let s = GuestStorage::new(&[(0, 16 << 20)]).unwrap();
        let mut b = SpaceBuilder::new(&s, DesignationType::RegionFirst, 0x10_0000, 3, 0).unwrap();
        for (virt, frame) in [
            (0x40_0000, 0),
            (0x40_1000, 0x2_0000),
            (0x40_2000, 0x80_0000),
        ] {
            b.map(virt, frame, 0x1000, FrameSize::Size4K, LeafFlags::default())
                .unwrap();
        }
        b.map(
            0x60_0000,
            0x20_0000,
            1 << 20,
            FrameSize::Size1M,
            LeafFlags::default(),
        )
        .unwrap();
        let asce = b.asce();
        drop(b);
        let c = TranslationCache::new();
        for prefix in [0, 0x2_0000] {
            let cx = ctx(asce, AccessMode::Fetch).with_prefix(prefix);
            for v in [0x40_0123, 0x40_1123, 0x40_2123, 0x60_0123] {
                let want = walk::walk(&s, v, &cx).result;
                assert_eq!(
                    c.translate(&s, v, &cx),
                    want,
                    "miss {v:#x} prefix {prefix:#x}"
                );
                assert!(c.contains(&s, v, &cx));
                assert_eq!(
                    c.translate(&s, v, &cx),
                    want,
                    "hit {v:#x} prefix {prefix:#x}"
                );
            }
        }
    }
}
