//! Architected outcomes as plain data: program-interruption codes, the
//! translation-exception identification (TEID) and the vCPU's program-interruption
//! record (§9). Callers compare these bit for bit.
#![forbid(unsafe_code)]

use crate::addr::{EffectiveAddress, bit};

/// How storage is accessed (`enum gacc_mode`). The discriminants are distinct bits, so
/// that a set of modes is a mask (the translation cache tests a mode against the modes
/// an entry refuses with one AND).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AccessMode {
    /// Operand fetch.
    Fetch = 1,
    /// Operand store.
    Store = 2,
    /// Instruction fetch (never used by memops; kept for IEP).
    InstructionFetch = 4,
}

impl AccessMode {
    /// Whether this is a store.
    pub const fn is_store(self) -> bool {
        matches!(self, AccessMode::Store)
    }
}

/// A 16-bit program-interruption code (§9.1).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProgramInterruptionCode(pub u16);

impl ProgramInterruptionCode {
    pub const PRIVILEGED_OPERATION: Self = Self(0x02);
    pub const PROTECTION: Self = Self(0x04);
    pub const ADDRESSING: Self = Self(0x05);
    pub const SEGMENT_TRANSLATION: Self = Self(0x10);
    pub const PAGE_TRANSLATION: Self = Self(0x11);
    pub const TRANSLATION_SPECIFICATION: Self = Self(0x12);
    pub const ALET_SPECIFICATION: Self = Self(0x28);
    pub const ALEN_TRANSLATION: Self = Self(0x29);
    pub const ALE_SEQUENCE: Self = Self(0x2A);
    pub const ASTE_VALIDITY: Self = Self(0x2B);
    pub const ASTE_SEQUENCE: Self = Self(0x2C);
    pub const EXTENDED_AUTHORITY: Self = Self(0x2D);
    pub const ASTE_INSTANCE: Self = Self(0x2F);
    pub const ASCE_TYPE: Self = Self(0x38);
    pub const REGION_FIRST_TRANSLATION: Self = Self(0x39);
    pub const REGION_SECOND_TRANSLATION: Self = Self(0x3A);
    pub const REGION_THIRD_TRANSLATION: Self = Self(0x3B);
    /// PER event; merged with a new code on injection (§9.5).
    pub const PER: Self = Self(0x80);

    /// The architecture's name of this code, if it is one the model produces.
    pub const fn name(self) -> &'static str {
        match self.0 {
            0x02 => "privileged-operation",
            0x04 => "protection",
            0x05 => "addressing",
            0x10 => "segment-translation",
            0x11 => "page-translation",
            0x12 => "translation-specification",
            0x28 => "ALET-specification",
            0x29 => "ALEN-translation",
            0x2A => "ALE-sequence",
            0x2B => "ASTE-validity",
            0x2C => "ASTE-sequence",
            0x2D => "extended-authority",
            0x2F => "ASTE-instance",
            0x38 => "ASCE-type",
            0x39 => "region-first-translation",
            0x3A => "region-second-translation",
            0x3B => "region-third-translation",
            _ => "unknown",
        }
    }

    /// Codes for which `trans_exc` records address, FSI and AS in the TEID (§9.3).
    pub const fn records_teid_address(self) -> bool {
        matches!(self.0, 0x04 | 0x10 | 0x11 | 0x38 | 0x39 | 0x3A | 0x3B)
    }

    /// Codes for which `trans_exc` records the exception access id (§9.3).
    pub const fn records_access_id(self) -> bool {
        matches!(
            self.0,
            0x04 | 0x10 | 0x11 | 0x38 | 0x39 | 0x3A | 0x3B | 0x29 | 0x2A | 0x2B | 0x2C | 0x2D
        )
    }
}

impl core::fmt::Debug for ProgramInterruptionCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PGM {:#04x} ({})", self.0, self.name())
    }
}

impl core::fmt::Display for ProgramInterruptionCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#04x} {}", self.0, self.name())
    }
}

/// Which protection mechanism raised a PGM 4 (`enum prot_type`, §9.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtectionType {
    /// Low-address protection.
    LowAddress,
    /// Key-controlled protection.
    KeyControlled,
    /// Access-list-controlled protection (fetch-only ALE).
    AccessListControlled,
    /// DAT protection.
    Dat,
    /// Instruction-execution protection.
    InstructionExecution,
    /// No information (the kernel's `PROT_TYPE_DUMMY`).
    Dummy,
}

/// Fetch/store indication of the TEID (bits 52-53).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchStoreIndication {
    /// 00: not given.
    None,
    /// 01: store.
    Store,
    /// 10: fetch.
    Fetch,
    /// 11: reserved.
    Reserved,
}

/// The translation-exception identification (`union teid`, §9.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Teid(pub u64);

impl Teid {
    /// Bits 0-51: the page address of the failing access.
    pub const ADDRESS_MASK: u64 = 0xFFFF_FFFF_FFFF_F000;
    /// Bits 52-53: fetch/store indication.
    pub const FSI_SHIFT: u32 = 10;
    pub const FSI_MASK: u64 = 3 << Self::FSI_SHIFT;
    pub const FSI_STORE: u64 = 1;
    pub const FSI_FETCH: u64 = 2;
    /// Bit 56.
    pub const B56: u64 = bit(56);
    /// Bit 60.
    pub const B60: u64 = bit(60);
    /// Bit 61.
    pub const B61: u64 = bit(61);
    /// Bits 62-63: address-space indication.
    pub const AS_MASK: u64 = 3;

    /// The page address recorded (bits 0-51 in place).
    pub const fn address(self) -> u64 {
        self.0 & Self::ADDRESS_MASK
    }
    /// The fetch/store indication.
    pub const fn fsi(self) -> FetchStoreIndication {
        match (self.0 & Self::FSI_MASK) >> Self::FSI_SHIFT {
            0 => FetchStoreIndication::None,
            1 => FetchStoreIndication::Store,
            2 => FetchStoreIndication::Fetch,
            _ => FetchStoreIndication::Reserved,
        }
    }
    /// Bits (56, 60, 61), the ESOP-2 protection code.
    pub const fn protection_bits(self) -> (bool, bool, bool) {
        (
            self.0 & Self::B56 != 0,
            self.0 & Self::B60 != 0,
            self.0 & Self::B61 != 0,
        )
    }
    /// The ESOP-2 reading of bits 56/60/61, for humans.
    pub const fn protection_meaning(self) -> &'static str {
        match self.protection_bits() {
            (false, false, false) => "no information (termination possible)",
            (false, false, true) => "DAT protection",
            (false, true, false) => "key-controlled protection",
            (false, true, true) => "access-list-controlled protection",
            (true, false, false) => "low-address protection",
            (true, false, true) => "instruction-execution protection",
            _ => "reserved",
        }
    }
    /// The AS bits (62-63) as recorded.
    pub const fn address_space(self) -> u8 {
        (self.0 & Self::AS_MASK) as u8
    }
}

impl core::fmt::Debug for Teid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Teid({:#018x})", self.0)
    }
}

/// The vCPU's program-interruption record (`struct kvm_s390_pgm_info` subset, §9.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct PgmInfo {
    /// Interruption code.
    pub code: u16,
    /// Translation-exception identification.
    pub teid: Teid,
    /// Exception access id (lowcore 160).
    pub exc_access_id: u8,
    /// Operand access id (lowcore 162); always 0 for memops.
    pub op_access_id: u8,
    /// `kvm_s390_pgm_info.flags` (ILC valid, ILC, no-rewind); 0 from `trans_exc`.
    pub flags: u8,
}

/// A program interruption recognised by the translation engine: the code plus the
/// record the kernel's `trans_exc_ending` builds for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProgramInterruption {
    /// The code.
    pub code: ProgramInterruptionCode,
    /// The record the vCPU holds for injection.
    pub info: PgmInfo,
}

/// The inputs of `trans_exc_ending` other than the code.
#[derive(Clone, Copy, Debug)]
pub struct ExceptionContext {
    /// The address to report (the failing fragment's first byte).
    pub address: EffectiveAddress,
    /// The memop's `ar` field, as given.
    pub ar: u8,
    /// The access mode.
    pub mode: AccessMode,
    /// PSW bits 16-17 as they are.
    pub psw_as: u8,
}

impl ProgramInterruption {
    /// Build the record as `trans_exc_ending` does (§9.3): everything zeroed, then the
    /// code, then the TEID and access id as far as the code records them.
    pub fn new(
        code: ProgramInterruptionCode,
        ctx: &ExceptionContext,
        prot: ProtectionType,
        terminate: bool,
    ) -> Self {
        let mut info = PgmInfo {
            code: code.0,
            ..PgmInfo::default()
        };
        if code.records_teid_address() {
            let fsi = if ctx.mode.is_store() {
                Teid::FSI_STORE
            } else {
                Teid::FSI_FETCH
            };
            let mut teid = (ctx.address.0 & Teid::ADDRESS_MASK)
                | (fsi << Teid::FSI_SHIFT)
                | (ctx.psw_as as u64 & Teid::AS_MASK);
            if code == ProgramInterruptionCode::PROTECTION && !terminate {
                teid |= match prot {
                    ProtectionType::LowAddress => Teid::B56,
                    ProtectionType::KeyControlled => Teid::B60,
                    ProtectionType::AccessListControlled => Teid::B60 | Teid::B61,
                    ProtectionType::Dat => Teid::B61,
                    ProtectionType::InstructionExecution => Teid::B56 | Teid::B61,
                    ProtectionType::Dummy => 0,
                };
            }
            info.teid = Teid(teid);
        }
        if code.records_access_id() {
            info.exc_access_id = ctx.ar;
        }
        Self { code, info }
    }

    /// A bare code with an otherwise zero record (PGM 5, 0x12, 0x28 and codes not
    /// tied to an address).
    pub fn bare(code: ProgramInterruptionCode) -> Self {
        Self {
            code,
            info: PgmInfo {
                code: code.0,
                ..PgmInfo::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(mode: AccessMode) -> ExceptionContext {
        ExceptionContext {
            address: EffectiveAddress(0x1234_5678),
            ar: 3,
            mode,
            psw_as: 2,
        }
    }

    // §9.3: protection types set bits 56/60/61; termination clears them.
    #[test]
    fn protection_teid_bits_per_type() {
        let p = ProgramInterruptionCode::PROTECTION;
        let c = ctx(AccessMode::Store);
        let t = |prot, term| ProgramInterruption::new(p, &c, prot, term).info.teid.0;
        assert_eq!(
            t(ProtectionType::LowAddress, false),
            0x1234_5000 | 0x400 | 0x80 | 2
        );
        assert_eq!(
            t(ProtectionType::KeyControlled, false),
            0x1234_5000 | 0x400 | 0x8 | 2
        );
        assert_eq!(t(ProtectionType::AccessListControlled, false), 0x1234_540e);
        assert_eq!(t(ProtectionType::Dat, false), 0x1234_5406);
        assert_eq!(t(ProtectionType::InstructionExecution, false), 0x1234_5486);
        assert_eq!(t(ProtectionType::KeyControlled, true), 0x1234_5402);
    }

    // §9.3: which codes record TEID and access id.
    #[test]
    fn recorded_fields_by_code() {
        let c = ctx(AccessMode::Fetch);
        let seg = ProgramInterruption::new(
            ProgramInterruptionCode::SEGMENT_TRANSLATION,
            &c,
            ProtectionType::Dummy,
            false,
        );
        assert_eq!(seg.info.teid.0, 0x1234_5802);
        assert_eq!(seg.info.exc_access_id, 3);
        let ale = ProgramInterruption::new(
            ProgramInterruptionCode::ALE_SEQUENCE,
            &c,
            ProtectionType::Dummy,
            false,
        );
        assert_eq!(ale.info.teid.0, 0);
        assert_eq!(ale.info.exc_access_id, 3);
        for code in [0x05, 0x12, 0x28] {
            let e = ProgramInterruption::new(
                ProgramInterruptionCode(code),
                &c,
                ProtectionType::Dummy,
                false,
            );
            assert_eq!(
                e.info,
                PgmInfo {
                    code,
                    ..PgmInfo::default()
                }
            );
        }
    }
}

/// The negative errno values the memop path returns (§3.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Errno {
    /// Operation not permitted (never produced by memops).
    Eperm = 1,
    /// Interrupted.
    Eintr = 4,
    /// I/O error (wrong process, VM bugged).
    Eio = 5,
    /// Argument too big.
    E2big = 7,
    /// Try again.
    Eagain = 11,
    /// Out of memory.
    Enomem = 12,
    /// Bad address (user copy failed).
    Efault = 14,
    /// Invalid argument.
    Einval = 22,
    /// Operation not supported.
    Eopnotsupp = 95,
}

impl Errno {
    /// The negative value an ioctl returns.
    pub const fn ret(self) -> i32 {
        -(self as i32)
    }
    /// The C name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Eperm => "EPERM",
            Self::Eintr => "EINTR",
            Self::Eio => "EIO",
            Self::E2big => "E2BIG",
            Self::Eagain => "EAGAIN",
            Self::Enomem => "ENOMEM",
            Self::Efault => "EFAULT",
            Self::Einval => "EINVAL",
            Self::Eopnotsupp => "EOPNOTSUPP",
        }
    }
    /// The errno for a negative return value, if it is one of these.
    pub const fn from_ret(ret: i32) -> Option<Self> {
        Some(match ret {
            -1 => Self::Eperm,
            -4 => Self::Eintr,
            -5 => Self::Eio,
            -7 => Self::E2big,
            -11 => Self::Eagain,
            -12 => Self::Enomem,
            -14 => Self::Efault,
            -22 => Self::Einval,
            -95 => Self::Eopnotsupp,
            _ => return None,
        })
    }
}

/// Why an access did not complete: an architected program interruption (with the
/// record `trans_exc` built) or a negative errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessError {
    /// A program interruption; the ioctl returns its code.
    Program(ProgramInterruption),
    /// A negative errno.
    Errno(Errno),
}

impl AccessError {
    /// The ioctl return value: the positive code or the negative errno.
    pub const fn ret(&self) -> i32 {
        match self {
            Self::Program(p) => p.code.0 as i32,
            Self::Errno(e) => e.ret(),
        }
    }
    /// A bare program interruption with an otherwise zero record.
    pub fn bare(code: ProgramInterruptionCode) -> Self {
        Self::Program(ProgramInterruption::bare(code))
    }
}

impl From<Errno> for AccessError {
    fn from(e: Errno) -> Self {
        Self::Errno(e)
    }
}
