//! Address kinds of the architecture and the bit-numbering helper.
//!
//! s390 numbers bits from the most significant end: bit 0 of a 64-bit field is
//! `1 << 63`. [`bit`] converts an IBM bit number of a doubleword into a mask so that
//! every layout constant in this crate reads like the Principles of Operation.
#![forbid(unsafe_code)]

/// Mask of IBM bit `n` (0 = most significant) of a 64-bit doubleword.
pub const fn bit(n: u32) -> u64 {
    1u64 << (63 - n)
}

/// Mask of IBM bit `n` of a 32-bit word.
pub const fn bit32(n: u32) -> u32 {
    1u32 << (31 - n)
}

/// The positions of the one bits of `word`, lowest first (host numbering: 0 is the
/// least significant), for walking the bitmaps the model keeps of its own state.
pub(crate) fn set_bits(mut word: u64) -> impl Iterator<Item = u32> {
    core::iter::from_fn(move || {
        (word != 0).then(|| {
            let b = word.trailing_zeros();
            word &= word - 1;
            b
        })
    })
}

/// Size of a 4 KiB page frame.
pub const PAGE_SIZE: u64 = 4096;
/// Mask of the byte index within a 4 KiB page.
pub const PAGE_OFFSET_MASK: u64 = PAGE_SIZE - 1;
/// Mask of the page-frame part of an address.
pub const PAGE_FRAME_MASK: u64 = !PAGE_OFFSET_MASK;

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw 64-bit value.
            pub const fn value(self) -> u64 {
                self.0
            }
            /// The 4 KiB frame number (address >> 12).
            pub const fn frame(self) -> u64 {
                self.0 >> 12
            }
            /// Byte offset within the 4 KiB page.
            pub const fn page_offset(self) -> u64 {
                self.0 & PAGE_OFFSET_MASK
            }
            /// Add with wrap-around at 2^64, as the kernel's unsigned arithmetic does.
            pub const fn wrapping_add(self, n: u64) -> Self {
                Self(self.0.wrapping_add(n))
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl core::fmt::LowerHex for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

address_type!(
    /// A guest absolute address: an index into guest storage (memslots).
    AbsoluteAddress
);
address_type!(
    /// A guest real address: an absolute address before prefixing (§5.7).
    RealAddress
);
address_type!(
    /// A guest logical address as given to a memop, before the addressing mode is applied.
    LogicalAddress
);
address_type!(
    /// A logical address reduced to the current addressing mode (§5.1).
    EffectiveAddress
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_bits_lists_the_ones_lowest_first() {
        assert_eq!(set_bits(0).count(), 0);
        assert_eq!(set_bits(0b1010_0001).collect::<Vec<_>>(), [0, 5, 7]);
        assert_eq!(set_bits(1 << 63 | 1).collect::<Vec<_>>(), [0, 63]);
        assert_eq!(set_bits(u64::MAX).count(), 64);
    }

    #[test]
    fn ibm_bit_numbering() {
        assert_eq!(bit(0), 0x8000_0000_0000_0000);
        assert_eq!(bit(63), 1);
        assert_eq!(bit(58), 0x20);
        assert_eq!(bit32(0), 0x8000_0000);
        assert_eq!(bit32(7), 0x0100_0000);
    }

    #[test]
    fn frame_and_offset() {
        let a = AbsoluteAddress(0x1234_5678);
        assert_eq!(a.frame(), 0x12345);
        assert_eq!(a.page_offset(), 0x678);
        assert_eq!(
            AbsoluteAddress(u64::MAX).wrapping_add(1),
            AbsoluteAddress(0)
        );
    }
}
