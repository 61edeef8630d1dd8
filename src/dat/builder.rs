//! A builder of DAT address spaces in guest storage: region-first, -second, -third or
//! segment designations, 4 KiB, 1 MiB (EDAT-1) and 2 GiB (EDAT-2) frames, and edits
//! of single entries at any level (scenario-format.md `[[space]]`).
//!
//! Tables are allocated upwards from an origin: region and segment tables take 16 KiB
//! at 4 KiB alignment, page tables 2 KiB at 2 KiB alignment. New tables hold only
//! invalid entries of the right table type and full length.
#![forbid(unsafe_code)]

use super::entries::{
    Asce, DesignationType, PageTableEntry, RegionTableEntry, SegmentTableEntry, TableLevel,
};
use super::walk::FrameSize;
use crate::addr::AbsoluteAddress;
use crate::storage::GuestStorage;

/// A request the builder cannot carry out; the message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The table area would leave guest memory.
    #[error(
        "the {level} table at {addr:#x} ({size:#x} bytes) does not lie in guest memory; move `tables` or enlarge memory"
    )]
    TableOutsideMemory {
        /// Table level.
        level: &'static str,
        /// Table address.
        addr: u64,
        /// Table size.
        size: u64,
    },
    /// The table origin is not 4 KiB aligned.
    #[error("table origin {0:#x} is not 4 KiB aligned")]
    UnalignedOrigin(u64),
    /// A mapping's address or size is not a multiple of the page size.
    #[error(
        "mapping virt={virt:#x} abs={abs:#x} size={size:#x} is not aligned to its {page} page size"
    )]
    Unaligned {
        /// Virtual start.
        virt: u64,
        /// Absolute start.
        abs: u64,
        /// Size.
        size: u64,
        /// Page size name.
        page: &'static str,
    },
    /// A mapping's range runs past 2^64.
    #[error("mapping virt={virt:#x} size={size:#x} runs past the end of the address space")]
    Overflow {
        /// Virtual start.
        virt: u64,
        /// Size.
        size: u64,
    },
    /// The virtual address is beyond what the ASCE designates.
    #[error(
        "virtual address {virt:#x} is outside the {dt} space designated by this ASCE (type and table length)"
    )]
    OutsideSpace {
        /// Virtual address.
        virt: u64,
        /// Designation type name.
        dt: &'static str,
    },
    /// A large frame cannot be placed at this level with this designation type.
    #[error("a {page} frame needs a {level} table, which a {dt} space does not have")]
    FrameAboveTop {
        /// Page size name.
        page: &'static str,
        /// Level name.
        level: &'static str,
        /// Designation type name.
        dt: &'static str,
    },
    /// Something is already mapped in a way that conflicts.
    #[error("virtual address {virt:#x} is already mapped by a {existing} at the {level} level")]
    Conflict {
        /// Virtual address.
        virt: u64,
        /// What is there.
        existing: &'static str,
        /// Level name.
        level: &'static str,
    },
    /// The walk for an edit does not reach the requested level.
    #[error("the walk for {virt:#x} does not reach the {level} level: {reason}")]
    Unreachable {
        /// Virtual address.
        virt: u64,
        /// Level name.
        level: &'static str,
        /// Why.
        reason: String,
    },
}

/// Entry values the builder writes for a mapping's leaf (P and IEP bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeafFlags {
    /// DAT protection.
    pub protect: bool,
    /// Instruction-execution protection.
    pub iep: bool,
}

/// Builds one address space's tables in guest storage.
#[derive(Debug)]
pub struct SpaceBuilder<'a> {
    storage: &'a GuestStorage,
    asce: Asce,
    next: u64,
    /// Address ranges of every table allocated, `(start, len)`.
    tables: Vec<(u64, u64)>,
}

const CRST_SIZE: u64 = 16 * 1024;
const PT_SIZE: u64 = 2 * 1024;

impl<'a> SpaceBuilder<'a> {
    /// Create the top-level table at `origin` and the ASCE designating it. `flags` are
    /// the ASCE's G, P, S, X and R bits (`Asce::G`...); `tl` is the ASCE table length.
    pub fn new(
        storage: &'a GuestStorage,
        dt: DesignationType,
        origin: u64,
        tl: u8,
        flags: u64,
    ) -> Result<Self, BuildError> {
        if origin & 0xFFF != 0 {
            return Err(BuildError::UnalignedOrigin(origin));
        }
        let flags = flags & (Asce::G | Asce::P | Asce::S | Asce::X | Asce::R);
        let mut b = Self {
            storage,
            asce: Asce::new(origin, dt, tl & 3, flags),
            next: origin,
            tables: Vec::new(),
        };
        let top = b.alloc_table(dt.level())?;
        debug_assert_eq!(top, origin);
        Ok(b)
    }

    /// The ASCE of this space.
    pub fn asce(&self) -> Asce {
        self.asce
    }

    /// The tables allocated so far as `(start, length)` ranges.
    pub fn tables(&self) -> &[(u64, u64)] {
        &self.tables
    }

    /// The next free table address (the end of the table area so far).
    pub fn end(&self) -> u64 {
        self.next
    }

    fn alloc_table(&mut self, level: TableLevel) -> Result<u64, BuildError> {
        let (size, align) = if level == TableLevel::Page {
            (PT_SIZE, PT_SIZE)
        } else {
            (CRST_SIZE, 4096)
        };
        let outside = |addr| BuildError::TableOutsideMemory {
            level: level.name(),
            addr,
            size,
        };
        let addr = self.next.checked_add(align - 1).ok_or(outside(self.next))? & !(align - 1);
        let end = addr.checked_add(size).ok_or(outside(addr))?;
        let empty: u64 = match level.table_type() {
            Some(tt) if level != TableLevel::Segment => RegionTableEntry::empty(tt).0,
            Some(_) => SegmentTableEntry::EMPTY.0,
            None => PageTableEntry::EMPTY.0,
        };
        let bytes: Vec<u8> = (0..size / 8).flat_map(|_| empty.to_be_bytes()).collect();
        self.storage
            .write(AbsoluteAddress(addr), &bytes)
            .map_err(|_| outside(addr))?;
        self.next = end;
        self.tables.push((addr, size));
        Ok(addr)
    }

    fn read(&self, addr: u64) -> Option<u64> {
        self.storage.read_u64(AbsoluteAddress(addr)).ok()
    }

    fn write(&self, addr: u64, value: u64) -> Result<(), BuildError> {
        self.storage
            .write_u64(AbsoluteAddress(addr), value)
            .map_err(|_| BuildError::TableOutsideMemory {
                level: "entry",
                addr,
                size: 8,
            })
    }

    /// Whether `virt` lies in the range the ASCE's type and length designate.
    fn in_space(&self, virt: u64) -> bool {
        let top = self.asce.dt().level();
        let higher_zero = match top {
            TableLevel::RegionFirst => true,
            TableLevel::RegionSecond => virt >> 53 == 0,
            TableLevel::RegionThird => virt >> 42 == 0,
            _ => virt >> 31 == 0,
        };
        higher_zero && top.index_top2(virt) <= self.asce.tl()
    }

    /// Map `size` bytes at virtual `virt` to absolute (for 4 KiB pages: real) `abs`
    /// with frames of `page` size.
    pub fn map(
        &mut self,
        virt: u64,
        abs: u64,
        size: u64,
        page: FrameSize,
        flags: LeafFlags,
    ) -> Result<(), BuildError> {
        let step = page.bytes();
        if !virt.is_multiple_of(step) || !abs.is_multiple_of(step) || !size.is_multiple_of(step) {
            return Err(BuildError::Unaligned {
                virt,
                abs,
                size,
                page: page.name(),
            });
        }
        if size != 0
            && (virt.checked_add(size - 1).is_none() || abs.checked_add(size - 1).is_none())
        {
            return Err(BuildError::Overflow { virt, size });
        }
        let mut off = 0;
        while off < size {
            self.map_one(virt + off, abs + off, page, flags)?;
            off += step;
        }
        Ok(())
    }

    fn map_one(
        &mut self,
        virt: u64,
        abs: u64,
        page: FrameSize,
        flags: LeafFlags,
    ) -> Result<(), BuildError> {
        if !self.in_space(virt) {
            return Err(BuildError::OutsideSpace {
                virt,
                dt: self.asce.dt().name(),
            });
        }
        let leaf_level = match page {
            FrameSize::Size4K => TableLevel::Page,
            FrameSize::Size1M => TableLevel::Segment,
            FrameSize::Size2G => TableLevel::RegionThird,
        };
        let top = self.asce.dt().level();
        if leaf_level < top {
            return Err(BuildError::FrameAboveTop {
                page: page.name(),
                level: leaf_level.name(),
                dt: self.asce.dt().name(),
            });
        }
        let mut level = top;
        let mut table = self.asce.origin();
        while level != leaf_level {
            let entry_addr = table.wrapping_add(level.index(virt) * 8);
            let e = self
                .read(entry_addr)
                .ok_or(BuildError::TableOutsideMemory {
                    level: level.name(),
                    addr: entry_addr,
                    size: 8,
                })?;
            let lower = match level.lower() {
                Some(l) => l,
                None => break,
            };
            let (invalid, large, origin) = match level {
                TableLevel::Segment => {
                    let ste = SegmentTableEntry(e);
                    (ste.invalid(), ste.fc(), e & SegmentTableEntry::PTO)
                }
                _ => {
                    let rte = RegionTableEntry(e);
                    (
                        rte.invalid(),
                        level == TableLevel::RegionThird && rte.fc(),
                        rte.origin(),
                    )
                }
            };
            if large && !invalid {
                return Err(BuildError::Conflict {
                    virt,
                    existing: "large frame",
                    level: level.name(),
                });
            }
            table = if invalid {
                let t = self.alloc_table(lower)?;
                let entry = match level {
                    TableLevel::Segment => t,
                    _ => t | (level.table_type().unwrap_or(0) << RegionTableEntry::TT_SHIFT) | 3,
                };
                self.write(entry_addr, entry)?;
                t
            } else {
                origin
            };
            level = lower;
        }
        let entry_addr = table.wrapping_add(level.index(virt) * 8);
        let p = if flags.protect { PageTableEntry::P } else { 0 };
        let iep = if flags.iep { PageTableEntry::IEP } else { 0 };
        let value = match page {
            FrameSize::Size4K => abs | p | iep,
            FrameSize::Size1M => {
                let old =
                    SegmentTableEntry(self.read(entry_addr).unwrap_or(SegmentTableEntry::EMPTY.0));
                if !old.invalid() && !old.fc() {
                    return Err(BuildError::Conflict {
                        virt,
                        existing: "page table",
                        level: "segment",
                    });
                }
                abs | SegmentTableEntry::FC | p | iep
            }
            FrameSize::Size2G => {
                let old = RegionTableEntry(
                    self.read(entry_addr)
                        .unwrap_or(RegionTableEntry::empty(1).0),
                );
                if !old.invalid() && !old.fc() {
                    return Err(BuildError::Conflict {
                        virt,
                        existing: "segment table",
                        level: "region-third",
                    });
                }
                abs | RegionTableEntry::FC | p | iep | (1 << RegionTableEntry::TT_SHIFT)
            }
        };
        self.write(entry_addr, value)
    }

    /// The absolute address of the entry the walk for `virt` reads at `level`, following
    /// the tables as they are in storage now.
    pub fn entry_address(
        &self,
        virt: u64,
        level: TableLevel,
    ) -> Result<AbsoluteAddress, BuildError> {
        entry_address(self.storage, self.asce, virt, level)
    }

    /// Set and clear bits of the entry for `virt` at `level` (set after clear).
    pub fn edit(
        &self,
        virt: u64,
        level: TableLevel,
        set: u64,
        clear: u64,
    ) -> Result<(), BuildError> {
        let a = self.entry_address(virt, level)?;
        let e = self.read(a.0).unwrap_or(0);
        self.write(a.0, (e & !clear) | set)
    }

    /// Replace the entry for `virt` at `level` with `value`.
    pub fn replace(&self, virt: u64, level: TableLevel, value: u64) -> Result<(), BuildError> {
        let a = self.entry_address(virt, level)?;
        self.write(a.0, value)
    }

    /// Set the invalid bit of the entry for `virt` at `level`.
    pub fn invalidate(&self, virt: u64, level: TableLevel) -> Result<(), BuildError> {
        let i = match level {
            TableLevel::Page => PageTableEntry::I,
            TableLevel::Segment => SegmentTableEntry::I,
            _ => RegionTableEntry::I,
        };
        self.edit(virt, level, i, 0)
    }
}

/// The absolute address of the entry a walk for `virt` through `asce` reads at
/// `level`, following the tables in storage (no EDAT: an FC=1 entry above `level` ends
/// the walk). An error says why the walk stops before `level`.
pub fn entry_address(
    storage: &GuestStorage,
    asce: Asce,
    virt: u64,
    level: TableLevel,
) -> Result<AbsoluteAddress, BuildError> {
    let unreachable = |reason: String| BuildError::Unreachable {
        virt,
        level: level.name(),
        reason,
    };
    let top = asce.dt().level();
    if asce.real_space() {
        return Err(unreachable("the ASCE designates a real space".into()));
    }
    if level < top {
        return Err(unreachable(format!(
            "the ASCE designates a {} table",
            top.name()
        )));
    }
    let mut cur = top;
    let mut table = asce.origin();
    loop {
        let addr = table.wrapping_add(cur.index(virt) * 8);
        if cur == level {
            return Ok(AbsoluteAddress(addr));
        }
        let e = storage.read_u64(AbsoluteAddress(addr)).map_err(|_| {
            unreachable(format!(
                "the {} entry at {addr:#x} is outside memory",
                cur.name()
            ))
        })?;
        let (invalid, large, origin) = match cur {
            TableLevel::Segment => (
                e & SegmentTableEntry::I != 0,
                e & SegmentTableEntry::FC != 0,
                e & SegmentTableEntry::PTO,
            ),
            _ => (
                e & RegionTableEntry::I != 0,
                cur == TableLevel::RegionThird && e & RegionTableEntry::FC != 0,
                e & RegionTableEntry::ORIGIN,
            ),
        };
        if invalid {
            return Err(unreachable(format!(
                "the {} entry at {addr:#x} is invalid",
                cur.name()
            )));
        }
        if large {
            return Err(unreachable(format!(
                "the {} entry at {addr:#x} maps a large frame",
                cur.name()
            )));
        }
        match cur.lower() {
            Some(l) => cur = l,
            None => return Err(unreachable("no level below the page table".into())),
        }
        table = origin;
    }
}
