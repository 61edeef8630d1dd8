//! vCPU state consumed by guest accesses (§4): PSW, control registers, access
//! registers, prefix, and the program-interruption state used by injection (§9.5).
#![forbid(unsafe_code)]

use crate::addr::{AbsoluteAddress, RealAddress, bit};
use crate::exception::PgmInfo;

pub mod cache;
pub use cache::TranslationCache;

/// The PSW (mask and instruction address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Psw {
    /// PSW bits 0-63.
    pub mask: u64,
    /// PSW bits 64-127.
    pub addr: u64,
}

/// Address-space control (PSW bits 16-17).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressSpaceControl {
    /// 00
    Primary,
    /// 01
    AccessRegister,
    /// 10
    Secondary,
    /// 11
    Home,
}

impl AddressSpaceControl {
    /// From the two PSW bits.
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 3 {
            0 => Self::Primary,
            1 => Self::AccessRegister,
            2 => Self::Secondary,
            _ => Self::Home,
        }
    }
    /// The two bits.
    pub const fn bits(self) -> u8 {
        match self {
            Self::Primary => 0,
            Self::AccessRegister => 1,
            Self::Secondary => 2,
            Self::Home => 3,
        }
    }
    /// Lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::AccessRegister => "access-register",
            Self::Secondary => "secondary",
            Self::Home => "home",
        }
    }
}

/// Addressing mode (PSW EA/BA, §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressingMode {
    /// 24-bit (also the invalid EA=1, BA=0 combination).
    Bits24,
    /// 31-bit.
    Bits31,
    /// 64-bit.
    Bits64,
}

impl Psw {
    /// DAT mode (bit 5).
    pub const DAT: u64 = bit(5);
    /// PSW key (bits 8-11).
    pub const KEY_SHIFT: u32 = 63 - 11;
    pub const KEY_MASK: u64 = 0xF << Self::KEY_SHIFT;
    /// Problem state (bit 15).
    pub const PROBLEM_STATE: u64 = bit(15);
    /// Address-space control (bits 16-17).
    pub const AS_SHIFT: u32 = 63 - 17;
    pub const AS_MASK: u64 = 3 << Self::AS_SHIFT;
    /// Extended addressing (bit 31).
    pub const EA: u64 = bit(31);
    /// Basic addressing (bit 32).
    pub const BA: u64 = bit(32);

    /// Whether DAT is on.
    pub const fn dat(&self) -> bool {
        self.mask & Self::DAT != 0
    }
    /// The PSW key.
    pub const fn key(&self) -> u8 {
        ((self.mask & Self::KEY_MASK) >> Self::KEY_SHIFT) as u8
    }
    /// Whether the CPU is in problem state.
    pub const fn problem_state(&self) -> bool {
        self.mask & Self::PROBLEM_STATE != 0
    }
    /// The raw AS bits.
    pub const fn as_bits(&self) -> u8 {
        ((self.mask & Self::AS_MASK) >> Self::AS_SHIFT) as u8
    }
    /// The address-space control.
    pub const fn address_space(&self) -> AddressSpaceControl {
        AddressSpaceControl::from_bits(self.as_bits())
    }
    /// The addressing mode; EA=1/BA=0 is treated as 24-bit (§5.1, §11 item 13).
    pub const fn addressing_mode(&self) -> AddressingMode {
        match (self.mask & Self::EA != 0, self.mask & Self::BA != 0) {
            (true, true) => AddressingMode::Bits64,
            (false, true) => AddressingMode::Bits31,
            _ => AddressingMode::Bits24,
        }
    }
}

/// Control register 0 bits the access path reads (§4).
pub mod cr0 {
    use crate::addr::bit;
    /// Low-address protection (bit 35).
    pub const LOW_ADDRESS_PROTECTION: u64 = bit(35);
    /// Fetch-protection override (bit 38).
    pub const FETCH_PROTECTION_OVERRIDE: u64 = bit(38);
    /// Storage-protection override (bit 39).
    pub const STORAGE_PROTECTION_OVERRIDE: u64 = bit(39);
    /// EDAT enable (bit 40).
    pub const EDAT: u64 = bit(40);
    /// Instruction-execution protection enable (bit 43).
    pub const IEP: u64 = bit(43);
}

/// Effective prefix mask: 31 bits, 8 KiB aligned (§4).
pub const PREFIX_MASK: u32 = 0x7FFF_E000;

/// The last SIE intercept, which only feeds the ILC of an injected exception (§9.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SieIntercept {
    /// Intercept code (`icptcode`).
    pub icptcode: u8,
    /// Instruction parameter a (`ipa`).
    pub ipa: u16,
    /// Intercept status (`icptstatus`).
    pub icptstatus: u8,
    /// Program ILC (`pgmilc`).
    pub pgmilc: u8,
}

/// The state of one vCPU as the access path sees it.
///
/// `Send` but not `Sync`: like a kernel vCPU, whose ioctls hold its mutex, it is used
/// by one thread at a time (its translation cache is plain cells). Threads share the
/// [`Vm`](crate::vm::Vm); a vCPU moves to its thread or sits behind a lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vcpu {
    /// The PSW.
    pub psw: Psw,
    /// CR0 to CR15.
    pub cr: [u64; 16],
    /// AR0 to AR15 (ALETs).
    pub ar: [u32; 16],
    /// The prefix register as set; only `PREFIX_MASK` bits take effect.
    pub prefix: u32,
    /// Protected-virtualization vCPU.
    pub protected: bool,
    /// SIDA contents of a protected vCPU.
    pub sida: Vec<u8>,
    /// Last SIE intercept (ILC of injected exceptions).
    pub intercept: SieIntercept,
    /// The last program-interruption record built by an access (`vcpu->arch.pgm`).
    pub pgm: PgmInfo,
    /// The pending program interruption, if any (§9.5).
    pub pending_pgm: Option<PgmInfo>,
    /// Breaking-event address stored at delivery (`gbea`; 1 after reset, §13.1).
    pub gbea: u64,
    /// The translation cache of this vCPU: invisible (results, memory and keys are
    /// those of the uncached walk, and vCPUs compare equal whatever it holds), only
    /// faster. `vcpu.tlb.set_enabled(false)` switches it off.
    pub tlb: TranslationCache,
}

impl Default for Vcpu {
    fn default() -> Self {
        Self::new()
    }
}

impl Vcpu {
    /// A vCPU after KVM's initial reset: DAT off, 64-bit mode, CR0 = 0xE0.
    pub fn new() -> Self {
        let mut cr = [0u64; 16];
        cr[0] = 0xE0;
        Self {
            psw: Psw {
                mask: Psw::EA | Psw::BA,
                addr: 0,
            },
            cr,
            ar: [0; 16],
            prefix: 0,
            protected: false,
            sida: Vec::new(),
            intercept: SieIntercept::default(),
            pgm: PgmInfo::default(),
            pending_pgm: None,
            gbea: 1,
            tlb: TranslationCache::new(),
        }
    }

    /// The effective prefix (`kvm_s390_get_prefix`).
    pub const fn effective_prefix(&self) -> u64 {
        (self.prefix & PREFIX_MASK) as u64
    }

    /// Prefixing: real to absolute (§5.7).
    pub const fn real_to_absolute(&self, real: RealAddress) -> AbsoluteAddress {
        let p = self.effective_prefix();
        let r = real.0;
        AbsoluteAddress(if r < 0x2000 {
            r + p
        } else if r >= p && r < p + 0x2000 {
            r - p
        } else {
            r
        })
    }

    /// Whether a CR0 bit is set.
    pub const fn cr0(&self, mask: u64) -> bool {
        self.cr[0] & mask != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // §5.7 prefixing, both directions and the identity elsewhere.
    #[test]
    fn prefixing() {
        let mut v = Vcpu::new();
        v.prefix = 0x1_2345; // only 0x12000 takes effect
        assert_eq!(v.effective_prefix(), 0x12000);
        assert_eq!(
            v.real_to_absolute(RealAddress(0x10)),
            AbsoluteAddress(0x12010)
        );
        assert_eq!(
            v.real_to_absolute(RealAddress(0x13fff)),
            AbsoluteAddress(0x1fff)
        );
        assert_eq!(
            v.real_to_absolute(RealAddress(0x14000)),
            AbsoluteAddress(0x14000)
        );
        assert_eq!(
            v.real_to_absolute(RealAddress(u64::MAX)),
            AbsoluteAddress(u64::MAX)
        );
        v.prefix = 0;
        assert_eq!(
            v.real_to_absolute(RealAddress(0x1000)),
            AbsoluteAddress(0x1000)
        );
    }

    // §5.1 addressing modes, including the invalid EA=1/BA=0 combination.
    #[test]
    fn psw_fields() {
        let p = Psw {
            mask: 0x0400_4001_8000_0000 | (0xA << Psw::KEY_SHIFT),
            addr: 0,
        };
        assert!(p.dat());
        assert_eq!(p.key(), 0xA);
        assert_eq!(p.address_space(), AddressSpaceControl::AccessRegister);
        assert_eq!(p.addressing_mode(), AddressingMode::Bits64);
        let ea_only = Psw {
            mask: Psw::EA,
            addr: 0,
        };
        assert_eq!(ea_only.addressing_mode(), AddressingMode::Bits24);
    }
}
