//! Guest absolute storage: memslots backed by lazily committed anonymous maps, and one
//! storage-key byte per 4 KiB frame (§4, §10).
//!
//! This is the only module with `unsafe` code. Guest memory and key bytes live in
//! `MAP_NORESERVE` anonymous maps, so a 16 TiB guest costs address space only until a
//! page is touched. Several threads may access one guest: data moves with plain
//! copies (like the host CPU's MVCOS, no atomicity beyond a byte), key R/C updates and
//! compare-and-swap use atomic instructions on the mapped bytes.

use crate::addr::{AbsoluteAddress, PAGE_SIZE};
use crate::keys::StorageKey;
use core::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};
use memmap2::{MmapOptions, MmapRaw};

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

/// One memslot: a range of guest absolute storage and its storage keys.
struct Memslot {
    start: u64,
    size: u64,
    data: MmapRaw,
    keys: MmapRaw,
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

    fn key_cell(&self, addr: u64) -> &AtomicU8 {
        debug_assert!(self.contains(addr));
        let index = ((addr - self.start) / PAGE_SIZE) as usize;
        // SAFETY: the key map holds one byte per frame of the slot and `addr` lies in
        // the slot, so `index` is in bounds; the map lives as long as `self`; AtomicU8
        // has the size and alignment of u8; every access to key bytes is atomic.
        unsafe { AtomicU8::from_ptr(self.keys.as_mut_ptr().add(index)) }
    }
}

/// Guest absolute storage: the memslots and their storage keys.
pub struct GuestStorage {
    slots: Vec<Memslot>,
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
                Ok(Memslot {
                    start,
                    size,
                    data: anonymous_map(size, start, size)?,
                    keys: anonymous_map(size / PAGE_SIZE, start, size)?,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        Ok(Self { slots })
    }

    /// The memslots as `(start, size)`, in address order.
    pub fn memslots(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.slots.iter().map(|s| (s.start, s.size))
    }

    #[inline]
    fn slot(&self, addr: u64) -> Option<&Memslot> {
        // Most guests have one or two slots: a linear scan beats a binary search there.
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
        self.slot(addr.0).is_some()
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
            return Ok(());
        }
        let mut done = 0;
        for (s, a, n) in self.pieces(addr.0, data.len())? {
            // SAFETY: `pieces` returned a range inside this slot's live map.
            unsafe { core::ptr::copy_nonoverlapping(data[done..].as_ptr(), s.byte_ptr(a), n) };
            done += n;
        }
        Ok(())
    }

    /// Read a big-endian doubleword. The 8 bytes must be in memory.
    #[inline]
    pub fn read_u64(&self, addr: AbsoluteAddress) -> Result<u64, NotInMemory> {
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
        Ok(StorageKey(s.key_cell(addr.0).load(Ordering::Relaxed)))
    }

    /// Set the storage key of the frame holding `addr` (bit 7 is forced to 0).
    pub fn set_key(&self, addr: AbsoluteAddress, key: StorageKey) -> Result<(), NotInMemory> {
        let s = self.slot(addr.0).ok_or(NotInMemory(addr))?;
        s.key_cell(addr.0).store(key.0 & 0xFE, Ordering::Relaxed);
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
                cell.fetch_or(
                    bits & (StorageKey::REFERENCE | StorageKey::CHANGE),
                    Ordering::Relaxed,
                );
            }
        }
    }

    /// Atomically replace the key's bits under `mask` with `value`, returning the old key
    /// (for RRBE-like operations).
    pub fn update_key(
        &self,
        addr: AbsoluteAddress,
        f: impl Fn(u8) -> u8,
    ) -> Result<StorageKey, NotInMemory> {
        let s = self.slot(addr.0).ok_or(NotInMemory(addr))?;
        let cell = s.key_cell(addr.0);
        let old = cell
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |k| Some(f(k) & 0xFE))
            .unwrap_or_else(|k| k);
        Ok(StorageKey(old))
    }

    /// Reset every frame's key to 0 (`dat_reset_skeys`).
    pub fn reset_keys(&self) {
        for s in &self.slots {
            let frames = (s.size / PAGE_SIZE) as usize;
            for i in 0..frames {
                // SAFETY: `i` is below the number of key bytes mapped for this slot.
                let cell = unsafe { AtomicU8::from_ptr(s.keys.as_mut_ptr().add(i)) };
                // Touch only non-zero keys so untouched key pages stay uncommitted.
                if cell.load(Ordering::Relaxed) != 0 {
                    cell.store(0, Ordering::Relaxed);
                }
            }
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
        Ok(Some(match len {
            1 => cas!(AtomicU8, u8, 1),
            2 => cas!(AtomicU16, u16, 2),
            4 => cas!(AtomicU32, u32, 4),
            8 => cas!(AtomicU64, u64, 8),
            _ => cas!(portable_atomic::AtomicU128, u128, 16),
        }))
    }
}

// SAFETY: the maps are plain memory owned by `GuestStorage`; all shared mutation goes
// through raw-pointer copies and atomics, the model's contract for concurrent guests.
unsafe impl Send for GuestStorage {}
// SAFETY: as above.
unsafe impl Sync for GuestStorage {}

#[cfg(test)]
mod tests {
    use super::*;

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
