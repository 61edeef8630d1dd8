//! Bit layouts of the ASCE and the DAT table entries (`asm/dat-bits.h`, §5.6).
//! Every mask is named after its Principles of Operation field and built with [`bit`].
#![forbid(unsafe_code)]

use crate::addr::bit;

/// ASCE designation type (bits 60-61) and, equally, the table type of region-table entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DesignationType {
    /// 00: segment table.
    Segment = 0,
    /// 01: region-third table.
    RegionThird = 1,
    /// 10: region-second table.
    RegionSecond = 2,
    /// 11: region-first table.
    RegionFirst = 3,
}

impl DesignationType {
    /// From the two-bit value.
    pub const fn from_bits(v: u64) -> Self {
        match v & 3 {
            0 => Self::Segment,
            1 => Self::RegionThird,
            2 => Self::RegionSecond,
            _ => Self::RegionFirst,
        }
    }
    /// The table level this designation type starts at.
    pub const fn level(self) -> TableLevel {
        match self {
            Self::Segment => TableLevel::Segment,
            Self::RegionThird => TableLevel::RegionThird,
            Self::RegionSecond => TableLevel::RegionSecond,
            Self::RegionFirst => TableLevel::RegionFirst,
        }
    }
    /// Name as in the scenario format.
    pub const fn name(self) -> &'static str {
        self.level().name()
    }
}

/// A level of the DAT table hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableLevel {
    /// Region-first table.
    RegionFirst,
    /// Region-second table.
    RegionSecond,
    /// Region-third table.
    RegionThird,
    /// Segment table.
    Segment,
    /// Page table.
    Page,
}

impl TableLevel {
    /// Name as in the scenario format.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RegionFirst => "region-first",
            Self::RegionSecond => "region-second",
            Self::RegionThird => "region-third",
            Self::Segment => "segment",
            Self::Page => "page",
        }
    }
    /// The index of a virtual address into a table of this level (RFX, RSX, RTX, SX, PX).
    pub const fn index(self, v: u64) -> u64 {
        match self {
            Self::RegionFirst => (v >> 53) & 0x7FF,
            Self::RegionSecond => (v >> 42) & 0x7FF,
            Self::RegionThird => (v >> 31) & 0x7FF,
            Self::Segment => (v >> 20) & 0x7FF,
            Self::Page => (v >> 12) & 0xFF,
        }
    }
    /// The leftmost two bits of the index (RFX01, RSX01, RTX01, SX01), compared with
    /// table lengths and offsets. 0 for the page level, which has no length.
    pub const fn index_top2(self, v: u64) -> u64 {
        match self {
            Self::RegionFirst => v >> 62,
            Self::RegionSecond => (v >> 51) & 3,
            Self::RegionThird => (v >> 40) & 3,
            Self::Segment => (v >> 29) & 3,
            Self::Page => 0,
        }
    }
    /// The next lower level.
    pub const fn lower(self) -> Option<Self> {
        match self {
            Self::RegionFirst => Some(Self::RegionSecond),
            Self::RegionSecond => Some(Self::RegionThird),
            Self::RegionThird => Some(Self::Segment),
            Self::Segment => Some(Self::Page),
            Self::Page => None,
        }
    }
    /// The table-type (TT) value entries of this level must carry; None for pages.
    pub const fn table_type(self) -> Option<u64> {
        match self {
            Self::RegionFirst => Some(3),
            Self::RegionSecond => Some(2),
            Self::RegionThird => Some(1),
            Self::Segment => Some(0),
            Self::Page => None,
        }
    }
    /// All levels from the top.
    pub const ALL: [Self; 5] = [
        Self::RegionFirst,
        Self::RegionSecond,
        Self::RegionThird,
        Self::Segment,
        Self::Page,
    ];
}

/// An address-space-control element.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Asce(pub u64);

impl Asce {
    /// Table origin (bits 0-51).
    pub const ORIGIN: u64 = !0xFFF;
    /// Subspace-group control (bit 54).
    pub const G: u64 = bit(54);
    /// Private-space control (bit 55).
    pub const P: u64 = bit(55);
    /// Storage-alteration-event control (bit 56).
    pub const S: u64 = bit(56);
    /// Space-switch-event control (bit 57).
    pub const X: u64 = bit(57);
    /// Real-space control (bit 58).
    pub const R: u64 = bit(58);
    /// Designation type (bits 60-61).
    pub const DT_SHIFT: u32 = 2;
    /// Table length (bits 62-63).
    pub const TL: u64 = 3;
    /// The synthetic ASCE of DAT-off accesses: only R set (§5.2).
    pub const REAL_SPACE: Self = Self(Self::R);

    /// Build an ASCE.
    pub const fn new(origin: u64, dt: DesignationType, tl: u8, flags: u64) -> Self {
        Self((origin & Self::ORIGIN) | flags | ((dt as u64) << Self::DT_SHIFT) | (tl as u64 & 3))
    }
    /// Table origin.
    pub const fn origin(self) -> u64 {
        self.0 & Self::ORIGIN
    }
    /// Designation type.
    pub const fn dt(self) -> DesignationType {
        DesignationType::from_bits(self.0 >> Self::DT_SHIFT)
    }
    /// Table length.
    pub const fn tl(self) -> u64 {
        self.0 & Self::TL
    }
    /// Private space.
    pub const fn private(self) -> bool {
        self.0 & Self::P != 0
    }
    /// Real space.
    pub const fn real_space(self) -> bool {
        self.0 & Self::R != 0
    }
}

impl core::fmt::Debug for Asce {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Asce({:#018x})", self.0)
    }
}

/// A region-first, -second or -third table entry (FC=0 format, and the RTTE FC=1 format).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RegionTableEntry(pub u64);

impl RegionTableEntry {
    /// Next-table origin (bits 0-51).
    pub const ORIGIN: u64 = !0xFFF;
    /// Region-frame absolute address of an RTTE with FC=1 (bits 0-32).
    pub const RFAA: u64 = 0xFFFF_FFFF_8000_0000;
    /// Format control (bit 53, RTTE only).
    pub const FC: u64 = bit(53);
    /// DAT protection (bit 54).
    pub const P: u64 = bit(54);
    /// Instruction-execution protection (bit 55, RTTE FC=1).
    pub const IEP: u64 = bit(55);
    /// Table offset (bits 56-57).
    pub const TF_SHIFT: u32 = 6;
    /// Region invalid (bit 58).
    pub const I: u64 = bit(58);
    /// Common region (bit 59, RTTE).
    pub const CR: u64 = bit(59);
    /// Table type (bits 60-61).
    pub const TT_SHIFT: u32 = 2;
    /// Table length (bits 62-63).
    pub const TL: u64 = 3;

    /// Origin of the next table.
    pub const fn origin(self) -> u64 {
        self.0 & Self::ORIGIN
    }
    /// Table offset.
    pub const fn tf(self) -> u64 {
        (self.0 >> Self::TF_SHIFT) & 3
    }
    /// Table length.
    pub const fn tl(self) -> u64 {
        self.0 & Self::TL
    }
    /// Table type.
    pub const fn tt(self) -> u64 {
        (self.0 >> Self::TT_SHIFT) & 3
    }
    /// Invalid.
    pub const fn invalid(self) -> bool {
        self.0 & Self::I != 0
    }
    /// DAT protected.
    pub const fn protected(self) -> bool {
        self.0 & Self::P != 0
    }
    /// Format control.
    pub const fn fc(self) -> bool {
        self.0 & Self::FC != 0
    }
    /// An invalid entry of a table of the given type, full length (what a new table holds).
    pub const fn empty(tt: u64) -> Self {
        Self(Self::I | (tt << Self::TT_SHIFT) | 3)
    }
}

/// A segment-table entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SegmentTableEntry(pub u64);

impl SegmentTableEntry {
    /// Page-table origin (bits 0-52, 2 KiB aligned).
    pub const PTO: u64 = !0x7FF;
    /// Segment-frame absolute address of an FC=1 entry (bits 0-43).
    pub const SFAA: u64 = 0xFFFF_FFFF_FFF0_0000;
    /// Format control (bit 53).
    pub const FC: u64 = bit(53);
    /// DAT protection (bit 54).
    pub const P: u64 = bit(54);
    /// Instruction-execution protection (bit 55, FC=1).
    pub const IEP: u64 = bit(55);
    /// Segment invalid (bit 58).
    pub const I: u64 = bit(58);
    /// Common segment (bit 59).
    pub const CS: u64 = bit(59);
    /// Table type (bits 60-61), 00 for segment tables.
    pub const TT_SHIFT: u32 = 2;

    /// Table type.
    pub const fn tt(self) -> u64 {
        (self.0 >> Self::TT_SHIFT) & 3
    }
    /// Invalid.
    pub const fn invalid(self) -> bool {
        self.0 & Self::I != 0
    }
    /// DAT protected.
    pub const fn protected(self) -> bool {
        self.0 & Self::P != 0
    }
    /// Format control.
    pub const fn fc(self) -> bool {
        self.0 & Self::FC != 0
    }
    /// An invalid segment-table entry.
    pub const EMPTY: Self = Self(Self::I);
}

/// A page-table entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PageTableEntry(pub u64);

impl PageTableEntry {
    /// Page-frame real address (bits 0-51).
    pub const PFRA: u64 = !0xFFF;
    /// Bit 52, must be zero.
    pub const Z: u64 = bit(52);
    /// Page invalid (bit 53).
    pub const I: u64 = bit(53);
    /// DAT protection (bit 54).
    pub const P: u64 = bit(54);
    /// Instruction-execution protection (bit 55).
    pub const IEP: u64 = bit(55);

    /// Invalid.
    pub const fn invalid(self) -> bool {
        self.0 & Self::I != 0
    }
    /// An invalid page-table entry.
    pub const EMPTY: Self = Self(Self::I);
}

macro_rules! hex_debug {
    ($($t:ident),*) => {$(
        impl core::fmt::Debug for $t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, concat!(stringify!($t), "({:#018x})"), self.0)
            }
        }
    )*};
}
hex_debug!(RegionTableEntry, SegmentTableEntry, PageTableEntry);

#[cfg(test)]
mod tests {
    use super::*;

    // §5.6: virtual-address fields.
    #[test]
    fn index_fields() {
        let v = 0xFFFF_FFFF_FFFF_FFFFu64;
        assert_eq!(TableLevel::RegionFirst.index(v), 0x7FF);
        assert_eq!(TableLevel::Page.index(v), 0xFF);
        let v = (5u64 << 53) | (6 << 42) | (7 << 31) | (8 << 20) | (9 << 12) | 0x123;
        let idx: Vec<u64> = TableLevel::ALL.iter().map(|l| l.index(v)).collect();
        assert_eq!(idx, vec![5, 6, 7, 8, 9]);
        assert_eq!(TableLevel::Segment.index_top2(3 << 29), 3);
        assert_eq!(TableLevel::RegionThird.index_top2(2 << 40), 2);
    }

    // §5.6: ASCE layout.
    #[test]
    fn asce_layout() {
        let a = Asce::new(0x12345000, DesignationType::RegionSecond, 2, Asce::P);
        assert_eq!(a.0, 0x12345000 | 0x100 | 0x8 | 2);
        assert_eq!(a.dt(), DesignationType::RegionSecond);
        assert!(a.private() && !a.real_space());
        assert_eq!(Asce::REAL_SPACE.0, 0x20);
        assert_eq!(RegionTableEntry::empty(3).0, 0x2f);
    }
}
