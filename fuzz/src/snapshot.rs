//! A copy of a small guest's memory and storage keys, to compare before and after an
//! operation and to run the harnesses' reference models on.

use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::vm::Vm;

/// Page size.
const PAGE: u64 = 4096;

/// One memslot's bytes and key bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotCopy {
    /// First absolute address.
    pub start: u64,
    /// Bytes.
    pub data: Vec<u8>,
    /// One key byte per frame.
    pub keys: Vec<u8>,
}

/// Memory and keys of every memslot.
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The slots in address order.
    pub slots: Vec<SlotCopy>,
}

impl Snapshot {
    /// Copy the guest's memory and keys.
    pub fn take(vm: &Vm) -> Self {
        let slots = vm
            .storage()
            .memslots()
            .map(|(start, size)| {
                let mut data = vec![0u8; size as usize];
                vm.storage()
                    .read(AbsoluteAddress(start), &mut data)
                    .expect("a memslot is memory");
                let keys = (0..size / PAGE)
                    .map(|f| {
                        vm.storage_key(AbsoluteAddress(start + f * PAGE))
                            .expect("a memslot frame has a key")
                            .0
                    })
                    .collect();
                SlotCopy { start, data, keys }
            })
            .collect();
        Self { slots }
    }

    fn locate(&self, addr: u64) -> Option<(usize, usize)> {
        self.slots.iter().enumerate().find_map(|(i, s)| {
            let off = addr.wrapping_sub(s.start);
            (off < s.data.len() as u64).then_some((i, off as usize))
        })
    }

    /// Whether `addr` is in a memslot.
    pub fn in_memory(&self, addr: u64) -> bool {
        self.locate(addr).is_some()
    }

    /// The byte at `addr`.
    pub fn byte(&self, addr: u64) -> Option<u8> {
        self.locate(addr).map(|(i, o)| self.slots[i].data[o])
    }

    /// Store a byte (the address must be in memory).
    pub fn set_byte(&mut self, addr: u64, v: u8) {
        if let Some((i, o)) = self.locate(addr) {
            self.slots[i].data[o] = v;
        }
    }

    /// The key byte of the frame holding `addr`.
    pub fn key(&self, addr: u64) -> Option<u8> {
        self.locate(addr)
            .map(|(i, o)| self.slots[i].keys[o / PAGE as usize])
    }

    /// OR bits into the key of the frame holding `addr`.
    pub fn or_key(&mut self, addr: u64, bits: u8) {
        if let Some((i, o)) = self.locate(addr) {
            self.slots[i].keys[o / PAGE as usize] |= bits;
        }
    }

    /// Absolute addresses of bytes that differ from `other` (same layout).
    pub fn changed_bytes(&self, other: &Snapshot) -> Vec<u64> {
        let mut out = Vec::new();
        for (a, b) in self.slots.iter().zip(&other.slots) {
            if a.data == b.data {
                continue;
            }
            for (i, (x, y)) in a.data.iter().zip(&b.data).enumerate() {
                if x != y {
                    out.push(a.start + i as u64);
                }
            }
        }
        out
    }

    /// `(frame address, key before, key after)` of frames whose key differs.
    pub fn changed_keys(&self, other: &Snapshot) -> Vec<(u64, u8, u8)> {
        let mut out = Vec::new();
        for (a, b) in self.slots.iter().zip(&other.slots) {
            for (i, (x, y)) in a.keys.iter().zip(&b.keys).enumerate() {
                if x != y {
                    out.push((a.start + i as u64 * PAGE, *x, *y));
                }
            }
        }
        out
    }

    /// A short description of how `other` differs, for assertion messages.
    pub fn describe_diff(&self, other: &Snapshot) -> String {
        let bytes = self.changed_bytes(other);
        let keys = self.changed_keys(other);
        let mut s = format!("{} bytes and {} keys differ", bytes.len(), keys.len());
        for a in bytes.iter().take(8) {
            s += &format!(
                "; byte {a:#x}: {:#04x} vs {:#04x}",
                self.byte(*a).unwrap_or(0),
                other.byte(*a).unwrap_or(0)
            );
        }
        for (f, x, y) in keys.iter().take(8) {
            s += &format!("; key {f:#x}: {x:#04x} vs {y:#04x}");
        }
        s
    }
}

impl core::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut l = f.debug_list();
        for s in &self.slots {
            l.entry(&format_args!("{:#x}+{:#x}", s.start, s.data.len()));
        }
        l.finish()
    }
}
