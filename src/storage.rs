//! Guest absolute storage: memslots backed by lazily committed anonymous maps, and one
//! storage-key byte per 4 KiB frame (§4, §10).
//!
//! This is the only module with `unsafe` code. Guest memory and key bytes live in
//! `MAP_NORESERVE` anonymous maps, so a 16 TiB guest costs address space only until a
//! page is touched. Several threads may access one guest: data moves with plain
//! copies (like the host CPU's MVCOS, no atomicity beyond a byte), key R/C updates and
//! compare-and-swap use atomic instructions on the mapped bytes.
//!
//! ## The table marker and the generation (translation cache support)
//!
//! Bit 7 of a key byte is architecturally 0 (§4). This module uses it as a private
//! marker, [`TABLE_MARK`], never visible through a key read: a cached DAT walk
//! ([`crate::tlb`]) sets it, together with R, on every frame whose table entries it
//! read. Every path here that changes a marked frame's bytes (writes, compare-and-swap)
//! or its key byte (set, update, reset: the only ways R can be cleared) replaces the
//! storage's [`generation`](GuestStorage::generation) with a fresh value. A cached
//! translation is valid only at the generation it was made at, so no cached result
//! survives a change to the tables it came from, nor to the R bits the walk set.
//!
//! Ordering: a writer stores the data, issues a SeqCst fence, then reads the markers;
//! a cached walk sets a missing marker with a SeqCst read-modify-write and a fence
//! before it reads the entry. So either the writer sees the marker (and changes the
//! generation), or the walk reads the new data. The walk loads the generation before
//! it reads any entry, and a writer changes the generation only after its data store,
//! so an entry recorded under a generation that a writer has since replaced is dead.

use crate::addr::{AbsoluteAddress, PAGE_SIZE, set_bits};
use crate::keys::StorageKey;
use core::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering, fence};
use memmap2::{MmapOptions, MmapRaw};

/// The private "holds DAT tables read by a cached walk" marker: bit 7 of the key byte,
/// which is architecturally 0 and masked out of every key read (§4).
pub(crate) const TABLE_MARK: u8 = 0x01;
/// The architected bits of a key byte.
const KEY_BITS: u8 = !TABLE_MARK;

/// Source of generation values. Each value is handed out once, to one storage, so a
/// generation identifies both the storage and the state of its marked frames.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

fn fresh_generation() -> u64 {
    NEXT_GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// Set `bits` in the key byte of `addr` in `slot` before reading the frame's table
/// entry: the RMW and the fence order the marker before the read (see the module
/// documentation).
#[cold]
fn set_bits_ordered(slot: &Memslot, addr: u64, bits: u8) {
    slot.key_cell_for_write(addr)
        .fetch_or(bits, Ordering::SeqCst);
    fence(Ordering::SeqCst);
}

/// Errors in a storage layout; the caller's problem.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StorageError {
    /// A memslot of size 0.
    #[error("memslot at {start:#x} has size 0; give it at least 4 KiB")]
    EmptySlot {
        /// Start of the slot.
        start: u64,
    },
    /// Start or size not a multiple of 4 KiB.
    #[error(
        "memslot {start:#x}+{size:#x} is not 4 KiB aligned; start and size must be multiples of 0x1000"
    )]
    Unaligned {
        /// Start of the slot.
        start: u64,
        /// Size of the slot.
        size: u64,
    },
    /// The slot's end lies beyond 2^64.
    #[error("memslot {start:#x}+{size:#x} ends beyond 2^64")]
    Overflow {
        /// Start of the slot.
        start: u64,
        /// Size of the slot.
        size: u64,
    },
    /// Two slots overlap.
    #[error("memslots {a_start:#x}+{a_size:#x} and {b_start:#x}+{b_size:#x} overlap")]
    Overlap {
        /// First slot start.
        a_start: u64,
        /// First slot size.
        a_size: u64,
        /// Second slot start.
        b_start: u64,
        /// Second slot size.
        b_size: u64,
    },
    /// The slot is larger than this host can map.
    #[error("memslot {start:#x}+{size:#x} could not be mapped: {reason}")]
    Map {
        /// Start of the slot.
        start: u64,
        /// Size of the slot.
        size: u64,
        /// The host's reason.
        reason: String,
    },
}

/// The outcome of an access to absolute storage outside every memslot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotInMemory(pub AbsoluteAddress);

/// The result of a compare-and-swap on guest storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareExchange {
    /// The storage held `old` and now holds `new`.
    Exchanged,
    /// The storage held the value given (big-endian bytes, `len` of them) and is unchanged.
    Unequal([u8; 16]),
}

/// Frames per key page: one 4 KiB page of the key map holds the keys of this many
/// frames (16 MiB of guest storage).
const FRAMES_PER_KEY_PAGE: u64 = 4096;

/// One memslot: a range of guest absolute storage and its storage keys.
struct Memslot {
    start: u64,
    size: u64,
    data: MmapRaw,
    keys: MmapRaw,
    /// One bit per key page, set before any key byte of that page is written and
    /// never cleared: a key page whose bit is clear holds only zero keys. A reset
    /// (`reset_keys`) visits only the pages with their bit set, so that enabling keys
    /// on a 16 TiB guest does not read 4 GiB of key map.
    touched: Box<[AtomicU64]>,
}

fn anonymous_map(len: u64, start: u64, size: u64) -> Result<MmapRaw, StorageError> {
    let err = |reason: String| StorageError::Map {
        start,
        size,
        reason,
    };
    let len = usize::try_from(len).map_err(|_| err("larger than the host address space".into()))?;
    MmapOptions::new()
        .len(len)
        .no_reserve_swap()
        .map_anon()
        .map(MmapRaw::from)
        .map_err(|e| err(e.to_string()))
}

impl Memslot {
    fn contains(&self, addr: u64) -> bool {
        addr >= self.start && addr - self.start < self.size
    }

    /// Pointer to the guest byte at `addr`, which must lie in this slot.
    fn byte_ptr(&self, addr: u64) -> *mut u8 {
        debug_assert!(self.contains(addr));
        // The offset is below `size`, which was mapped in full, so the pointer stays
        // inside the map; `wrapping_add` keeps this safe code.
        self.data
            .as_mut_ptr()
            .wrapping_add((addr - self.start) as usize)
    }

    /// The key cell of `addr` (in this slot) for a write that may make it non-zero:
    /// records its key page in `touched` first.
    fn key_cell_for_write(&self, addr: u64) -> &AtomicU8 {
        let page = (addr - self.start) / PAGE_SIZE / FRAMES_PER_KEY_PAGE;
        if let Some(word) = self.touched.get((page / 64) as usize) {
            let bit = 1u64 << (page % 64);
            if word.load(Ordering::Relaxed) & bit == 0 {
                word.fetch_or(bit, Ordering::SeqCst);
            }
        }
        self.key_cell(addr)
    }

    fn key_cell(&self, addr: u64) -> &AtomicU8 {
        debug_assert!(self.contains(addr));
        let index = ((addr - self.start) / PAGE_SIZE) as usize;
        // SAFETY: the key map holds one byte per frame of the slot and `addr` lies in
        // the slot, so `index` is in bounds; the map lives as long as `self`; AtomicU8
        // has the size and alignment of u8; every access to key bytes is atomic.
        unsafe { AtomicU8::from_ptr(self.keys.as_mut_ptr().add(index)) }
    }
}

/// The first memslot, reduced to what the hot paths need: its range, the host address
/// of guest byte 0 *as if* the map started at guest address 0 (so the host address of
/// `addr` is one addition; the biased pointer is computed with wrapping arithmetic and
/// only dereferenced for addresses inside the slot), and its key map.
struct FastSlot {
    start: u64,
    /// 0 when there is no slot: nothing matches.
    size: u64,
    data: *mut u8,
    keys: *mut u8,
}

impl FastSlot {
    #[inline(always)]
    fn contains(&self, addr: u64) -> bool {
        addr.wrapping_sub(self.start) < self.size
    }
    /// The host pointer of guest byte `addr`, which must be in the slot.
    #[inline(always)]
    fn byte_ptr(&self, addr: u64) -> *mut u8 {
        self.data.wrapping_add(addr as usize)
    }
    /// The big-endian doubleword at `addr`, which must be 8-byte aligned and in the
    /// slot.
    #[inline(always)]
    fn table_entry(&self, addr: u64) -> u64 {
        debug_assert!(addr & 7 == 0 && self.contains(addr));
        // SAFETY: 8-byte aligned and in the slot, whose size is a multiple of 4096: all
        // 8 bytes are inside its live map.
        let raw = unsafe { self.byte_ptr(addr).cast::<u64>().read_unaligned() };
        u64::from_be(raw)
    }

    /// The key cell of the frame holding `addr`, which must be in the slot.
    #[inline(always)]
    fn key_cell(&self, addr: u64) -> &AtomicU8 {
        // Indexed from the slot's start (4 KiB aligned), not biased like `data`: the
        // caller has just computed `addr - start` for `contains`, so the index costs
        // one shift.
        let p = self
            .keys
            .wrapping_add((addr.wrapping_sub(self.start) >> 12) as usize);
        // SAFETY: `addr` lies in the slot, so `p` is inside the slot's key map (one
        // byte per frame), which lives as long as the storage; every access to key
        // bytes is atomic.
        unsafe { AtomicU8::from_ptr(p) }
    }
}

/// Guest absolute storage: the memslots and their storage keys.
pub struct GuestStorage {
    slots: Vec<Memslot>,
    fast: FastSlot,
    /// Replaced by a fresh value whenever a marked frame's bytes or key change.
    generation: AtomicU64,
}

/// Why a keyed frame access ([`GuestStorage::fetch_frame`], [`GuestStorage::store_frame`])
/// did not move data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameAccessError {
    /// The frame lies outside every memslot.
    NotInMemory,
    /// The key check refused the access; the frame's R and C are unchanged (§13.1 Q4).
    Refused,
}

impl core::fmt::Debug for GuestStorage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut l = f.debug_list();
        for s in &self.slots {
            l.entry(&format_args!("{:#x}+{:#x}", s.start, s.size));
        }
        l.finish()
    }
}

impl GuestStorage {
    /// Create storage from `(start, size)` memslots. Slots must be 4 KiB aligned,
    /// non-empty and must not overlap; holes between them are not memory.
    pub fn new(slots: &[(u64, u64)]) -> Result<Self, StorageError> {
        let mut sorted: Vec<(u64, u64)> = slots.to_vec();
        sorted.sort_unstable();
        for &(start, size) in &sorted {
            if size == 0 {
                return Err(StorageError::EmptySlot { start });
            }
            if start % PAGE_SIZE != 0 || size % PAGE_SIZE != 0 {
                return Err(StorageError::Unaligned { start, size });
            }
            // The end may be exactly 2^64, not beyond.
            if start.checked_add(size - 1).is_none() {
                return Err(StorageError::Overflow { start, size });
            }
        }
        for w in sorted.windows(2) {
            let ((a_start, a_size), (b_start, b_size)) = (w[0], w[1]);
            if b_start - a_start < a_size {
                return Err(StorageError::Overlap {
                    a_start,
                    a_size,
                    b_start,
                    b_size,
                });
            }
        }
        let slots = sorted
            .into_iter()
            .map(|(start, size)| {
                let key_pages = (size / PAGE_SIZE).div_ceil(FRAMES_PER_KEY_PAGE);
                Ok(Memslot {
                    start,
                    size,
                    data: anonymous_map(size, start, size)?,
                    keys: anonymous_map(size / PAGE_SIZE, start, size)?,
                    touched: (0..key_pages.div_ceil(64))
                        .map(|_| AtomicU64::new(0))
                        .collect(),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let fast = match slots.first() {
            Some(s) => FastSlot {
                start: s.start,
                size: s.size,
                data: s.data.as_mut_ptr().wrapping_sub(s.start as usize),
                keys: s.keys.as_mut_ptr(),
            },
            None => FastSlot {
                start: 0,
                size: 0,
                data: core::ptr::null_mut(),
                keys: core::ptr::null_mut(),
            },
        };
        Ok(Self {
            slots,
            fast,
            generation: AtomicU64::new(fresh_generation()),
        })
    }

    /// The current generation: a value that changes whenever a frame holding DAT
    /// tables read by a cached walk is written or has its key changed (see the module
    /// documentation). Values are never reused, by this or any other storage.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Invalidate every cached translation of this storage.
    #[cold]
    fn bump_generation(&self) {
        self.generation.store(fresh_generation(), Ordering::SeqCst);
    }

    /// After a data store to `[addr, addr+len)`: if any frame of the range is marked,
    /// bump the generation. The fence orders the store before the marker loads.
    #[inline]
    fn after_store(&self, addr: u64, len: usize) {
        fence(Ordering::SeqCst);
        if len == 0 {
            return;
        }
        let last = addr.wrapping_add(len as u64 - 1);
        let mut frame = addr & !(PAGE_SIZE - 1);
        loop {
            if let Some(s) = self.slot(frame)
                && s.key_cell(frame).load(Ordering::Relaxed) & TABLE_MARK != 0
            {
                self.bump_generation();
                return;
            }
            if frame == last & !(PAGE_SIZE - 1) {
                return;
            }
            frame = frame.wrapping_add(PAGE_SIZE);
        }
    }

    /// The memslots as `(start, size)`, in address order.
    pub fn memslots(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.slots.iter().map(|s| (s.start, s.size))
    }

    #[inline(always)]
    fn slot(&self, addr: u64) -> Option<&Memslot> {
        // Most guests have one slot, or find most accesses in the first: test it inline.
        if self.fast.contains(addr) {
            return self.slots.first();
        }
        self.slot_slow(addr)
    }

    #[inline(never)]
    fn slot_slow(&self, addr: u64) -> Option<&Memslot> {
        // A linear scan beats a binary search for a few slots.
        if self.slots.len() <= 4 {
            return self.slots.iter().find(|s| s.contains(addr));
        }
        let i = self.slots.partition_point(|s| s.start <= addr);
        let s = self.slots.get(i.checked_sub(1)?)?;
        s.contains(addr).then_some(s)
    }

    /// Whether the 4 KiB frame holding `addr` lies in a memslot (`kvm_is_gpa_in_memslot`).
    #[inline]
    pub fn in_memory(&self, addr: AbsoluteAddress) -> bool {
        // The first slot's test alone answers the common case (it is never empty).
        self.fast.contains(addr.0) || self.slot_slow(addr.0).is_some()
    }

    /// Run `f` on each (slot, start, length) piece of `[addr, addr+len)`, failing with
    /// the first address outside memory before touching anything.
    fn pieces(&self, addr: u64, len: usize) -> Result<Vec<(&Memslot, u64, usize)>, NotInMemory> {
        let mut out = Vec::with_capacity(1);
        let mut a = addr;
        let mut left = len as u64;
        while left > 0 {
            let s = self.slot(a).ok_or(NotInMemory(AbsoluteAddress(a)))?;
            let n = left.min(s.size - (a - s.start));
            out.push((s, a, n as usize));
            left -= n;
            a = a.wrapping_add(n);
        }
        Ok(out)
    }

    /// Copy guest bytes at `addr` into `buf`. Fails without copying if any byte lies
    /// outside memory. The range may not wrap past 2^64 (it then fails at 0 unless a
    /// slot is there, which is the wrapped address).
    pub fn read(&self, addr: AbsoluteAddress, buf: &mut [u8]) -> Result<(), NotInMemory> {
        if let Some(s) = self.slot(addr.0)
            && (s.size - (addr.0 - s.start)) >= buf.len() as u64
        {
            // SAFETY: the whole range lies in this slot's live map (checked above) and
            // cannot overlap `buf`, which is ordinary host memory.
            unsafe {
                core::ptr::copy_nonoverlapping(s.byte_ptr(addr.0), buf.as_mut_ptr(), buf.len())
            };
            return Ok(());
        }
        let mut done = 0;
        for (s, a, n) in self.pieces(addr.0, buf.len())? {
            // SAFETY: `pieces` returned a range inside this slot's live map.
            unsafe { core::ptr::copy_nonoverlapping(s.byte_ptr(a), buf[done..].as_mut_ptr(), n) };
            done += n;
        }
        Ok(())
    }

    /// Copy `data` into guest storage at `addr`; fails without writing if any byte lies
    /// outside memory.
    pub fn write(&self, addr: AbsoluteAddress, data: &[u8]) -> Result<(), NotInMemory> {
        if let Some(s) = self.slot(addr.0)
            && (s.size - (addr.0 - s.start)) >= data.len() as u64
        {
            // SAFETY: the whole range lies in this slot's live map (checked above).
            unsafe {
                core::ptr::copy_nonoverlapping(data.as_ptr(), s.byte_ptr(addr.0), data.len())
            };
            self.after_store(addr.0, data.len());
            return Ok(());
        }
        let mut done = 0;
        for (s, a, n) in self.pieces(addr.0, data.len())? {
            // SAFETY: `pieces` returned a range inside this slot's live map.
            unsafe { core::ptr::copy_nonoverlapping(data[done..].as_ptr(), s.byte_ptr(a), n) };
            done += n;
        }
        self.after_store(addr.0, data.len());
        Ok(())
    }

    /// Read a big-endian doubleword. The 8 bytes must be in memory.
    #[inline]
    pub fn read_u64(&self, addr: AbsoluteAddress) -> Result<u64, NotInMemory> {
        if addr.0 & 7 == 0 && self.fast.contains(addr.0) {
            // SAFETY: 8-byte aligned and in the first slot, whose size is a multiple of
            // 4096: all 8 bytes are inside its live map.
            let raw = unsafe { self.fast.byte_ptr(addr.0).cast::<u64>().read_unaligned() };
            return Ok(u64::from_be(raw));
        }
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_be_bytes(b))
    }

    /// Read a big-endian word.
    pub fn read_u32(&self, addr: AbsoluteAddress) -> Result<u32, NotInMemory> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    /// Write a big-endian doubleword.
    pub fn write_u64(&self, addr: AbsoluteAddress, value: u64) -> Result<(), NotInMemory> {
        self.write(addr, &value.to_be_bytes())
    }

    /// The storage key of the frame holding `addr`.
    #[inline]
    pub fn key(&self, addr: AbsoluteAddress) -> Result<StorageKey, NotInMemory> {
        let s = self.slot(addr.0).ok_or(NotInMemory(addr))?;
        Ok(StorageKey(
            s.key_cell(addr.0).load(Ordering::Relaxed) & KEY_BITS,
        ))
    }

    /// Set the storage key of the frame holding `addr` (bit 7 is forced to 0).
    pub fn set_key(&self, addr: AbsoluteAddress, key: StorageKey) -> Result<(), NotInMemory> {
        let s = self.slot(addr.0).ok_or(NotInMemory(addr))?;
        let old = s
            .key_cell_for_write(addr.0)
            .swap(key.0 & KEY_BITS, Ordering::SeqCst);
        if old & TABLE_MARK != 0 {
            self.bump_generation();
        }
        Ok(())
    }

    /// Atomically OR reference/change bits into the key of the frame holding `addr`
    /// (what the host CPU does on access, §10.3). Outside memory nothing happens.
    #[inline]
    pub fn mark(&self, addr: AbsoluteAddress, bits: u8) {
        if let Some(s) = self.slot(addr.0) {
            let cell = s.key_cell(addr.0);
            // Skip the locked RMW when the bits are already there (the common case).
            if cell.load(Ordering::Relaxed) & bits != bits {
                s.key_cell_for_write(addr.0).fetch_or(
                    bits & (StorageKey::REFERENCE | StorageKey::CHANGE),
                    Ordering::Relaxed,
                );
            }
        }
    }

    /// Read the big-endian 8-byte DAT table entry at `addr` (8-byte aligned, as every
    /// entry address is) and set `bits` in its frame's key byte: R, as the host's load
    /// does (§10.3), and for a cached walk also [`TABLE_MARK`]. `None` outside memory
    /// (nothing is marked then). The bits are set before the entry is read (see the
    /// module documentation for why); the outcome equals `read_u64` then `mark`.
    #[inline(always)]
    pub(crate) fn read_table_entry(&self, addr: u64, bits: u8) -> Option<u64> {
        if addr & 7 == 0 && self.fast.contains(addr) {
            if self.fast.key_cell(addr).load(Ordering::Relaxed) & bits != bits
                && let Some(first) = self.slots.first()
            {
                set_bits_ordered(first, addr, bits);
            }
            return Some(self.fast.table_entry(addr));
        }
        self.read_table_entry_slow(addr, bits)
    }

    /// [`read_table_entry`](Self::read_table_entry) where it has nothing to set: the
    /// entry if it is in the first memslot and its frame's key already has `bits`,
    /// else `None` (and nothing happened). A read of memory the map holds, with no
    /// atomic update and no call, for the walk's fast path.
    #[inline(always)]
    pub(crate) fn read_table_entry_if_marked(&self, addr: u64, bits: u8) -> Option<u64> {
        if addr & 7 == 0
            && self.fast.contains(addr)
            && self.fast.key_cell(addr).load(Ordering::Relaxed) & bits == bits
        {
            return Some(self.fast.table_entry(addr));
        }
        None
    }

    /// Whether absolute `addr` is in the first memslot (a sufficient test for
    /// [`in_memory`](Self::in_memory), inline and without a call).
    #[inline(always)]
    pub(crate) fn in_first_slot(&self, addr: u64) -> bool {
        self.fast.contains(addr)
    }

    #[inline(never)]
    fn read_table_entry_slow(&self, addr: u64, bits: u8) -> Option<u64> {
        if addr & 7 != 0 {
            // Not reachable from the walk (entry addresses are multiples of 8); keep
            // the general semantics anyway, marking both frames the bytes may span.
            self.read_u64(AbsoluteAddress(addr)).ok()?;
            for a in [addr, addr.wrapping_add(7)] {
                if let Some(s) = self.slot(a) {
                    s.key_cell_for_write(a).fetch_or(bits, Ordering::SeqCst);
                }
            }
            fence(Ordering::SeqCst);
            return self.read_u64(AbsoluteAddress(addr)).ok();
        }
        let s = self.slot(addr)?;
        if s.key_cell(addr).load(Ordering::Relaxed) & bits != bits {
            set_bits_ordered(s, addr, bits);
        }
        // SAFETY: `addr` is 8-byte aligned and lies in the slot, whose size is a
        // multiple of 4096, so all 8 bytes are inside the slot's live map.
        let raw = unsafe { s.byte_ptr(addr).cast::<u64>().read_unaligned() };
        Some(u64::from_be(raw))
    }

    /// The start of a data-phase fragment ([`fetch_frame`](Self::fetch_frame),
    /// [`store_frame`](Self::store_frame)): the slot holding `a` and its frame's key
    /// cell, if `a` is in memory (else PGM 5 comes first, §5.8) and `permit` allows the
    /// frame's key (the table marker masked out).
    #[inline(always)]
    fn permitted_frame(
        &self,
        a: u64,
        permit: impl FnOnce(StorageKey) -> bool,
    ) -> Result<(&Memslot, &AtomicU8), FrameAccessError> {
        let s = self.slot(a).ok_or(FrameAccessError::NotInMemory)?;
        let cell = s.key_cell(a);
        if !permit(StorageKey(cell.load(Ordering::Relaxed) & KEY_BITS)) {
            return Err(FrameAccessError::Refused);
        }
        Ok((s, cell))
    }

    /// One fragment of a keyed fetch (the data phase of §5.8, §6.1): `buf.len()` bytes
    /// at `addr`, within one 4 KiB frame. The frame's key goes to `permit`; if it
    /// allows, the bytes are copied and R is set (§10.3). One memslot lookup for the key,
    /// the copy and the mark.
    #[inline]
    pub fn fetch_frame(
        &self,
        addr: AbsoluteAddress,
        buf: &mut [u8],
        permit: impl FnOnce(StorageKey) -> bool,
    ) -> Result<(), FrameAccessError> {
        let a = addr.0;
        let (s, cell) = self.permitted_frame(a, permit)?;
        if (a & (PAGE_SIZE - 1)) + buf.len() as u64 <= PAGE_SIZE {
            // SAFETY: the range lies in one frame of this slot (checked above; slots
            // are whole frames), inside its live map; `buf` is host memory.
            unsafe { core::ptr::copy_nonoverlapping(s.byte_ptr(a), buf.as_mut_ptr(), buf.len()) };
        } else {
            self.read(addr, buf)
                .map_err(|_| FrameAccessError::NotInMemory)?;
        }
        if cell.load(Ordering::Relaxed) & StorageKey::REFERENCE == 0 {
            s.key_cell_for_write(a)
                .fetch_or(StorageKey::REFERENCE, Ordering::Relaxed);
        }
        Ok(())
    }

    /// One fragment of a keyed store: like [`fetch_frame`](Self::fetch_frame), copying
    /// `data` in and setting R and C.
    #[inline]
    pub fn store_frame(
        &self,
        addr: AbsoluteAddress,
        data: &[u8],
        permit: impl FnOnce(StorageKey) -> bool,
    ) -> Result<(), FrameAccessError> {
        let a = addr.0;
        let (s, cell) = self.permitted_frame(a, permit)?;
        if (a & (PAGE_SIZE - 1)) + data.len() as u64 <= PAGE_SIZE {
            // SAFETY: as in `fetch_frame`; `data` is host memory, not guest storage.
            unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), s.byte_ptr(a), data.len()) };
            fence(Ordering::SeqCst);
            let k = cell.load(Ordering::Relaxed);
            const RC: u8 = StorageKey::REFERENCE | StorageKey::CHANGE;
            if k & RC != RC {
                s.key_cell_for_write(a).fetch_or(RC, Ordering::Relaxed);
            }
            if k & TABLE_MARK != 0 {
                self.bump_generation();
            }
        } else {
            self.write(addr, data)
                .map_err(|_| FrameAccessError::NotInMemory)?;
            self.mark(addr, StorageKey::REFERENCE | StorageKey::CHANGE);
        }
        Ok(())
    }

    /// Atomically replace the key's bits under `mask` with `value`, returning the old key
    /// (for RRBE-like operations).
    pub fn update_key(
        &self,
        addr: AbsoluteAddress,
        f: impl Fn(u8) -> u8,
    ) -> Result<StorageKey, NotInMemory> {
        let s = self.slot(addr.0).ok_or(NotInMemory(addr))?;
        let cell = s.key_cell_for_write(addr.0);
        let old = cell
            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |k| {
                Some(f(k & KEY_BITS) & KEY_BITS)
            })
            .unwrap_or_else(|k| k);
        if old & TABLE_MARK != 0 {
            self.bump_generation();
        }
        Ok(StorageKey(old & KEY_BITS))
    }

    /// The raw key byte of `addr`, table marker included (for tests).
    #[cfg(test)]
    fn key_cell_raw(&self, addr: u64) -> u8 {
        self.slot(addr)
            .map_or(0, |s| s.key_cell(addr).load(Ordering::Relaxed))
    }

    /// Reset every frame's key to 0 (`dat_reset_skeys`, §10.1).
    pub fn reset_keys(&self) {
        let mut marked = false;
        for s in &self.slots {
            let frames = s.size / PAGE_SIZE;
            // Only key pages ever written can hold a non-zero key (`Memslot::touched`).
            for (w, word) in s.touched.iter().enumerate() {
                for b in set_bits(word.load(Ordering::SeqCst)) {
                    let page = w as u64 * 64 + u64::from(b);
                    let first = page * FRAMES_PER_KEY_PAGE;
                    for i in first..frames.min(first + FRAMES_PER_KEY_PAGE) {
                        let cell = s.key_cell(s.start + i * PAGE_SIZE);
                        if cell.load(Ordering::Relaxed) != 0 {
                            marked |= cell.swap(0, Ordering::SeqCst) & TABLE_MARK != 0;
                        }
                    }
                }
            }
        }
        // R is gone from marked frames: no cached translation may survive.
        if marked {
            self.bump_generation();
        }
    }

    /// Atomic compare-and-swap of `old.len()` (1, 2, 4, 8 or 16) naturally aligned bytes
    /// at `addr`, big-endian values. `None` if the size or alignment is not one of those.
    pub fn compare_exchange(
        &self,
        addr: AbsoluteAddress,
        old: &[u8],
        new: &[u8],
    ) -> Result<Option<CompareExchange>, NotInMemory> {
        let len = old.len();
        if len != new.len()
            || !matches!(len, 1 | 2 | 4 | 8 | 16)
            || !addr.0.is_multiple_of(len as u64)
        {
            return Ok(None);
        }
        let s = self.slot(addr.0).ok_or(NotInMemory(addr))?;
        let p = s.byte_ptr(addr.0);
        let mut current = [0u8; 16];
        // Values are compared as raw bytes: native-endian reinterpretation of the
        // big-endian byte strings preserves equality.
        macro_rules! cas {
            ($atomic:ty, $int:ty, $n:expr) => {{
                let o = <$int>::from_ne_bytes(old.try_into().unwrap_or([0; $n]));
                let n = <$int>::from_ne_bytes(new.try_into().unwrap_or([0; $n]));
                // SAFETY: `p` points at `len` bytes inside the slot's live map (a
                // naturally aligned unit never crosses a page, and slots are whole
                // pages); the map is page aligned so `p` is aligned for the type; the
                // bytes are shared only through this model's accessors.
                let a = unsafe { <$atomic>::from_ptr(p.cast()) };
                match a.compare_exchange(o, n, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => CompareExchange::Exchanged,
                    Err(v) => {
                        current[..$n].copy_from_slice(&v.to_ne_bytes());
                        CompareExchange::Unequal(current)
                    }
                }
            }};
        }
        let r = match len {
            1 => cas!(AtomicU8, u8, 1),
            2 => cas!(AtomicU16, u16, 2),
            4 => cas!(AtomicU32, u32, 4),
            8 => cas!(AtomicU64, u64, 8),
            _ => cas!(portable_atomic::AtomicU128, u128, 16),
        };
        if r == CompareExchange::Exchanged {
            self.after_store(addr.0, len);
        }
        Ok(Some(r))
    }
}

// SAFETY: the maps are plain memory owned by `GuestStorage` (the `FastSlot` pointers
// point into the first slot's maps and live as long as they do); all shared mutation
// goes through raw-pointer copies and atomics, the model's contract for concurrent
// guests.
unsafe impl Send for GuestStorage {}
// SAFETY: as above.
unsafe impl Sync for GuestStorage {}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dat_reset_skeys` (§10): after a reset every key is 0, whichever path wrote it,
    /// in any key page of any slot (the reset visits only the key pages written since
    /// the slot was made: each write path must record its page). A marked frame's reset
    /// changes the generation.
    #[test]
    fn reset_clears_keys_written_by_every_path() {
        const TIB: u64 = 1 << 40;
        // A 64 GiB slot (1024 key pages) and one whose last key page is partial.
        let layout = [(0, 64 << 30), (TIB, (20 << 20) + 0x3000)];
        let frames = [
            0x1000,
            (16 << 20) + 0x5000,
            (40 << 30) + 0x7000,
            (64 << 30) - 0x1000,
            TIB + (16 << 20) + 0x2000,
            TIB + (20 << 20) + 0x2000,
        ];
        type Write = fn(&GuestStorage, u64);
        let paths: [(&str, Write); 8] = [
            ("set_key", |s, a| {
                s.set_key(AbsoluteAddress(a), StorageKey(0x50)).unwrap()
            }),
            ("update_key", |s, a| {
                s.update_key(AbsoluteAddress(a), |_| 0x36).unwrap();
            }),
            ("mark", |s, a| {
                s.mark(AbsoluteAddress(a), StorageKey::REFERENCE)
            }),
            ("fetch_frame", |s, a| {
                s.fetch_frame(AbsoluteAddress(a), &mut [0; 8], |_| true)
                    .unwrap()
            }),
            ("store_frame", |s, a| {
                s.store_frame(AbsoluteAddress(a), &[1; 8], |_| true)
                    .unwrap()
            }),
            ("read_table_entry", |s, a| {
                s.read_table_entry(a + 8, StorageKey::REFERENCE | TABLE_MARK)
                    .unwrap();
            }),
            ("read_table_entry unaligned", |s, a| {
                s.read_table_entry(a + 4, StorageKey::REFERENCE).unwrap();
            }),
            ("read_table_entry_if_marked after a mark", |s, a| {
                s.mark(AbsoluteAddress(a), StorageKey::CHANGE);
                let _ = s.read_table_entry_if_marked(a, StorageKey::CHANGE);
            }),
        ];
        for (name, write) in paths {
            let s = GuestStorage::new(&layout).unwrap();
            for &a in &frames {
                write(&s, a);
                assert_ne!(s.key(AbsoluteAddress(a)).unwrap().0, 0, "{name} {a:#x}");
            }
            let g = s.generation();
            s.reset_keys();
            for &a in &frames {
                assert_eq!(s.key(AbsoluteAddress(a)).unwrap().0, 0, "{name} {a:#x}");
                assert_eq!(
                    s.key_cell_raw(a),
                    0,
                    "{name} {a:#x}: the table marker is reset too"
                );
            }
            assert_eq!(s.generation() != g, name == "read_table_entry", "{name}");
        }
    }

    #[test]
    fn rejects_bad_layouts() {
        assert!(matches!(
            GuestStorage::new(&[(0, 0)]),
            Err(StorageError::EmptySlot { .. })
        ));
        assert!(matches!(
            GuestStorage::new(&[(1, 4096)]),
            Err(StorageError::Unaligned { .. })
        ));
        assert!(matches!(
            GuestStorage::new(&[(0, 0x2000), (0x1000, 0x1000)]),
            Err(StorageError::Overlap { .. })
        ));
        assert!(matches!(
            GuestStorage::new(&[(u64::MAX - 0xfff, 0x2000)]),
            Err(StorageError::Overflow { .. })
        ));
        // A slot ending exactly at 2^64 is fine.
        let s = GuestStorage::new(&[(u64::MAX - 0xfff, 0x1000)]).unwrap();
        assert!(s.in_memory(AbsoluteAddress(u64::MAX)));
    }

    #[test]
    fn holes_and_big_endian() {
        let s = GuestStorage::new(&[(0, 0x2000), (0x10000, 0x1000)]).unwrap();
        assert!(s.in_memory(AbsoluteAddress(0x1fff)));
        assert!(!s.in_memory(AbsoluteAddress(0x2000)));
        s.write_u64(AbsoluteAddress(0x10008), 0x0102_0304_0506_0708)
            .unwrap();
        let mut b = [0u8; 2];
        s.read(AbsoluteAddress(0x10008), &mut b).unwrap();
        assert_eq!(b, [1, 2]);
        assert_eq!(
            s.read_u64(AbsoluteAddress(0x1ffc)),
            Err(NotInMemory(AbsoluteAddress(0x2000)))
        );
        // A failed write changes nothing.
        assert!(s.write(AbsoluteAddress(0x1ffe), &[9; 4]).is_err());
        assert_eq!(s.read_u32(AbsoluteAddress(0x1ffc)).unwrap(), 0);
    }

    /// The walk's entry reads go through the first memslot's fast path; with that slot
    /// away from 0, each read must find its own frame's key (§10.3: R on the frame
    /// holding the entry) and the entry's bytes, like the general path.
    #[test]
    fn table_reads_in_a_first_slot_away_from_zero() {
        let s = GuestStorage::new(&[(0x40_0000, 0x4000), (0x80_0000, 0x1000)]).unwrap();
        let frames = [0x40_0000u64, 0x40_1000, 0x40_2000, 0x40_3000, 0x80_0000];
        for (i, f) in frames.into_iter().enumerate() {
            s.write_u64(AbsoluteAddress(f + 8), 0x1111 * (i as u64 + 1))
                .unwrap();
        }
        let r = StorageKey::REFERENCE;
        // Only the third frame has R: the marked-only read answers there alone.
        s.set_key(AbsoluteAddress(0x40_2000), StorageKey(r))
            .unwrap();
        for (i, f) in frames.into_iter().enumerate() {
            let want = (f == 0x40_2000).then_some(0x1111 * (i as u64 + 1));
            assert_eq!(s.read_table_entry_if_marked(f + 8, r), want, "{f:#x}");
        }
        // The setting read sets R on its frame and on no other.
        assert_eq!(s.read_table_entry(0x40_1008, r), Some(0x2222));
        for f in frames {
            let has_r = s.key(AbsoluteAddress(f)).unwrap().referenced();
            assert_eq!(has_r, f == 0x40_1000 || f == 0x40_2000, "{f:#x}");
        }
        assert_eq!(s.read_table_entry(0x80_0008, r), Some(0x5555));
        assert!(s.key(AbsoluteAddress(0x80_0000)).unwrap().referenced());
        assert_eq!(s.read_table_entry(0x40_4000, r), None);
    }

    #[test]
    fn sixteen_tib_guest_is_cheap() {
        let s = GuestStorage::new(&[(0, 16 << 40)]).unwrap();
        s.write_u64(AbsoluteAddress((16 << 40) - 8), 42).unwrap();
        assert_eq!(s.read_u64(AbsoluteAddress((16 << 40) - 8)).unwrap(), 42);
        s.mark(AbsoluteAddress(15 << 40), StorageKey::REFERENCE);
        assert!(s.key(AbsoluteAddress(15 << 40)).unwrap().referenced());
    }

    #[test]
    fn compare_exchange_sizes() {
        let s = GuestStorage::new(&[(0, 0x1000)]).unwrap();
        s.write(AbsoluteAddress(0x10), &[0xaa; 16]).unwrap();
        for len in [1usize, 2, 4, 8, 16] {
            let a = AbsoluteAddress(0x10);
            let old = vec![0xaa; len];
            let new = vec![0x55; len];
            assert_eq!(
                s.compare_exchange(a, &old, &new).unwrap(),
                Some(CompareExchange::Exchanged)
            );
            let r = s.compare_exchange(a, &old, &new).unwrap();
            let mut expect = [0u8; 16];
            expect[..len].fill(0x55);
            assert_eq!(r, Some(CompareExchange::Unequal(expect)));
            s.write(a, &[0xaa; 16]).unwrap();
        }
        assert_eq!(
            s.compare_exchange(AbsoluteAddress(0x11), &[0; 2], &[0; 2])
                .unwrap(),
            None
        );
        assert_eq!(
            s.compare_exchange(AbsoluteAddress(0x10), &[0; 3], &[0; 3])
                .unwrap(),
            None
        );
    }
}
