//! The DAT walk (`guest_translate_gva`, §5.6): a pure function of guest storage and
//! the translation context. It returns the absolute address or the exception, plus a
//! trace of the table entries it read; setting their reference bits (§10.3) is the
//! caller's job, done in one place (`translate`).
#![forbid(unsafe_code)]

use super::entries::{
    Asce, DesignationType, PageTableEntry, RegionTableEntry, SegmentTableEntry, TableLevel,
};
use crate::addr::{AbsoluteAddress, RealAddress};
use crate::exception::{AccessMode, ProgramInterruptionCode as Pgm, ProtectionType};
use crate::storage::GuestStorage;

/// Everything the walk needs besides storage and the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkContext {
    /// The ASCE selected for the access (§5.2).
    pub asce: Asce,
    /// EDAT-1 applies: CR0 bit 40 and facility 8.
    pub edat1: bool,
    /// EDAT-2 applies: EDAT-1 and facility 78.
    pub edat2: bool,
    /// IEP applies: CR0 bit 43 and facility 130.
    pub iep: bool,
    /// The access mode.
    pub mode: AccessMode,
    /// The effective prefix, for 4 KiB frames and real-space ASCEs (§5.7).
    pub prefix: u64,
}

/// The size of the frame an address translated through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameSize {
    /// A 4 KiB page (also real-space and DAT-off translations).
    Size4K,
    /// A 1 MiB segment frame (EDAT-1).
    Size1M,
    /// A 2 GiB region frame (EDAT-2).
    Size2G,
}

impl FrameSize {
    /// Size in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            Self::Size4K => 1 << 12,
            Self::Size1M => 1 << 20,
            Self::Size2G => 1 << 31,
        }
    }
    /// Name as in the scenario format.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Size4K => "4K",
            Self::Size1M => "1M",
            Self::Size2G => "2G",
        }
    }
}

/// A successful walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The absolute address of the byte.
    pub address: AbsoluteAddress,
    /// The real address before prefixing (equal to `address` for large frames).
    pub real: RealAddress,
    /// The frame size.
    pub frame: FrameSize,
    /// The accumulated DAT-protection bit (§8.2).
    pub dat_protected: bool,
    /// The leaf's IEP bit (§8.5).
    pub iep_protected: bool,
}

/// A walk that ended in a program interruption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatException {
    /// The code.
    pub code: Pgm,
    /// The protection type, meaningful for PGM 4.
    pub prot: ProtectionType,
}

impl DatException {
    const fn new(code: Pgm) -> Self {
        Self {
            code,
            prot: ProtectionType::Dummy,
        }
    }
}

/// One table entry the walk read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TraceEntry {
    /// The table level, `None` in unused slots.
    pub level: Option<TableLevel>,
    /// Absolute address of the entry.
    pub address: AbsoluteAddress,
    /// The raw entry.
    pub value: u64,
}

/// The entries read by one walk, top level first (at most five).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Trace {
    entries: [TraceEntry; 5],
    len: u8,
    /// An entry address the walk could not read (PGM 5), if that is how it ended.
    pub unreadable: Option<(TableLevel, AbsoluteAddress)>,
}

impl Trace {
    #[inline]
    fn push(&mut self, level: TableLevel, address: AbsoluteAddress, value: u64) {
        if let Some(slot) = self.entries.get_mut(self.len as usize) {
            *slot = TraceEntry {
                level: Some(level),
                address,
                value,
            };
            self.len += 1;
        }
    }
    /// The entries read, in order.
    pub fn entries(&self) -> &[TraceEntry] {
        &self.entries[..self.len as usize]
    }
}

/// The result of a walk and what it read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkOutcome {
    /// The translation or the exception.
    pub result: Result<Translation, DatException>,
    /// The entries read (their frames get the reference bit, §10.3).
    pub trace: Trace,
}

/// Prefixing (§5.7) on a 64-bit real address.
#[inline]
pub const fn real_to_absolute(r: u64, prefix: u64) -> u64 {
    if r < 0x2000 {
        r + prefix
    } else if r >= prefix && r < prefix + 0x2000 {
        r - prefix
    } else {
        r
    }
}

/// The ASCE-level checks of step B (§5.6), made before any memory access.
#[inline]
fn check_asce(asce: Asce, v: u64) -> Result<(), Pgm> {
    let tl = asce.tl();
    let rfx = TableLevel::RegionFirst.index(v);
    let rsx = TableLevel::RegionSecond.index(v);
    let rtx = TableLevel::RegionThird.index(v);
    match asce.dt() {
        DesignationType::RegionFirst => {
            if TableLevel::RegionFirst.index_top2(v) > tl {
                return Err(Pgm::REGION_FIRST_TRANSLATION);
            }
        }
        DesignationType::RegionSecond => {
            if rfx != 0 {
                return Err(Pgm::ASCE_TYPE);
            }
            if TableLevel::RegionSecond.index_top2(v) > tl {
                return Err(Pgm::REGION_SECOND_TRANSLATION);
            }
        }
        DesignationType::RegionThird => {
            if rfx != 0 || rsx != 0 {
                return Err(Pgm::ASCE_TYPE);
            }
            if TableLevel::RegionThird.index_top2(v) > tl {
                return Err(Pgm::REGION_THIRD_TRANSLATION);
            }
        }
        DesignationType::Segment => {
            if rfx != 0 || rsx != 0 || rtx != 0 {
                return Err(Pgm::ASCE_TYPE);
            }
            if TableLevel::Segment.index_top2(v) > tl {
                return Err(Pgm::SEGMENT_TRANSLATION);
            }
        }
    }
    Ok(())
}

/// The invalid-entry code of a level, and the length/offset code of the level below it.
const fn level_codes(level: TableLevel) -> (Pgm, Pgm) {
    match level {
        TableLevel::RegionFirst => (
            Pgm::REGION_FIRST_TRANSLATION,
            Pgm::REGION_SECOND_TRANSLATION,
        ),
        TableLevel::RegionSecond => (
            Pgm::REGION_SECOND_TRANSLATION,
            Pgm::REGION_THIRD_TRANSLATION,
        ),
        TableLevel::RegionThird => (Pgm::REGION_THIRD_TRANSLATION, Pgm::SEGMENT_TRANSLATION),
        TableLevel::Segment => (Pgm::SEGMENT_TRANSLATION, Pgm::PAGE_TRANSLATION),
        TableLevel::Page => (Pgm::PAGE_TRANSLATION, Pgm::PAGE_TRANSLATION),
    }
}

/// Translate the effective address `v` (§5.6, §5.7). Checks run in the kernel's order:
/// ASCE checks, then per level addressing of the entry, invalid bit, table type and
/// length/offset or private-space checks, then DAT protection (store), then addressing
/// of the frame.
pub fn walk(storage: &GuestStorage, v: u64, ctx: &WalkContext) -> WalkOutcome {
    let mut trace = Trace::default();
    let result = walk_inner(storage, v, ctx, &mut trace);
    WalkOutcome { result, trace }
}

#[inline]
fn walk_inner(
    storage: &GuestStorage,
    v: u64,
    ctx: &WalkContext,
    trace: &mut Trace,
) -> Result<Translation, DatException> {
    let asce = ctx.asce;
    let mut dat_prot = false;

    // Step A: a real-space ASCE translates v as a real address (§5.6).
    if asce.real_space() {
        return finish(
            storage,
            ctx,
            v,
            real_to_absolute(v, ctx.prefix),
            FrameSize::Size4K,
            false,
            false,
        );
    }
    check_asce(asce, v).map_err(DatException::new)?;

    let mut level = asce.dt().level();
    let mut entry_addr = asce.origin().wrapping_add(level.index(v) * 8);
    loop {
        // §11 item 1: entries are read at absolute addresses, no prefixing.
        let Ok(e) = storage.read_u64(AbsoluteAddress(entry_addr)) else {
            trace.unreadable = Some((level, AbsoluteAddress(entry_addr)));
            return Err(DatException::new(Pgm::ADDRESSING));
        };
        trace.push(level, AbsoluteAddress(entry_addr), e);
        let (invalid_code, length_code) = level_codes(level);
        match level {
            TableLevel::RegionFirst | TableLevel::RegionSecond => {
                let rte = RegionTableEntry(e);
                if rte.invalid() {
                    return Err(DatException::new(invalid_code));
                }
                if Some(rte.tt()) != level.table_type() {
                    return Err(DatException::new(Pgm::TRANSLATION_SPECIFICATION));
                }
                let lower = if level == TableLevel::RegionFirst {
                    TableLevel::RegionSecond
                } else {
                    TableLevel::RegionThird
                };
                let x01 = lower.index_top2(v);
                if x01 < rte.tf() || x01 > rte.tl() {
                    return Err(DatException::new(length_code));
                }
                // §11 item 5: region P bits count only with EDAT-1.
                dat_prot |= ctx.edat1 && rte.protected();
                entry_addr = rte.origin().wrapping_add(lower.index(v) * 8);
                level = lower;
            }
            TableLevel::RegionThird => {
                let rtte = RegionTableEntry(e);
                if rtte.invalid() {
                    return Err(DatException::new(invalid_code));
                }
                if rtte.tt() != 1 {
                    return Err(DatException::new(Pgm::TRANSLATION_SPECIFICATION));
                }
                if e & RegionTableEntry::CR != 0 && asce.private() && ctx.edat2 {
                    return Err(DatException::new(Pgm::TRANSLATION_SPECIFICATION));
                }
                if rtte.fc() && ctx.edat2 {
                    dat_prot |= rtte.protected();
                    let iep_prot = e & RegionTableEntry::IEP != 0;
                    let r = (e & RegionTableEntry::RFAA) | (v & 0x7FFF_FFFF);
                    return finish(storage, ctx, r, r, FrameSize::Size2G, dat_prot, iep_prot);
                }
                // §11 item 4: FC without EDAT-2 is read as FC=0.
                let sx01 = TableLevel::Segment.index_top2(v);
                if sx01 < rtte.tf() || sx01 > rtte.tl() {
                    return Err(DatException::new(length_code));
                }
                dat_prot |= ctx.edat1 && rtte.protected();
                entry_addr = rtte.origin().wrapping_add(TableLevel::Segment.index(v) * 8);
                level = TableLevel::Segment;
            }
            TableLevel::Segment => {
                let ste = SegmentTableEntry(e);
                if ste.invalid() {
                    return Err(DatException::new(invalid_code));
                }
                if ste.tt() != 0 {
                    return Err(DatException::new(Pgm::TRANSLATION_SPECIFICATION));
                }
                if e & SegmentTableEntry::CS != 0 && asce.private() {
                    return Err(DatException::new(Pgm::TRANSLATION_SPECIFICATION));
                }
                dat_prot |= ste.protected();
                if ste.fc() && ctx.edat1 {
                    let iep_prot = e & SegmentTableEntry::IEP != 0;
                    let r = (e & SegmentTableEntry::SFAA) | (v & 0xF_FFFF);
                    return finish(storage, ctx, r, r, FrameSize::Size1M, dat_prot, iep_prot);
                }
                entry_addr =
                    (e & SegmentTableEntry::PTO).wrapping_add(TableLevel::Page.index(v) * 8);
                level = TableLevel::Page;
            }
            TableLevel::Page => {
                let pte = PageTableEntry(e);
                if pte.invalid() {
                    return Err(DatException::new(invalid_code));
                }
                if e & PageTableEntry::Z != 0 {
                    return Err(DatException::new(Pgm::TRANSLATION_SPECIFICATION));
                }
                dat_prot |= e & PageTableEntry::P != 0;
                let iep_prot = e & PageTableEntry::IEP != 0;
                let r = (e & PageTableEntry::PFRA) | (v & 0xFFF);
                let a = real_to_absolute(r, ctx.prefix);
                return finish(storage, ctx, r, a, FrameSize::Size4K, dat_prot, iep_prot);
            }
        }
    }
}

/// The ABSOLUTE step of §5.6: DAT protection before addressing of the frame.
#[inline]
fn finish(
    storage: &GuestStorage,
    ctx: &WalkContext,
    real: u64,
    abs: u64,
    frame: FrameSize,
    dat_protected: bool,
    iep_protected: bool,
) -> Result<Translation, DatException> {
    if ctx.mode == AccessMode::Store && dat_protected {
        return Err(DatException {
            code: Pgm::PROTECTION,
            prot: ProtectionType::Dat,
        });
    }
    if ctx.mode == AccessMode::InstructionFetch && iep_protected && ctx.iep {
        return Err(DatException {
            code: Pgm::PROTECTION,
            prot: ProtectionType::InstructionExecution,
        });
    }
    if !storage.in_memory(AbsoluteAddress(abs)) {
        return Err(DatException::new(Pgm::ADDRESSING));
    }
    Ok(Translation {
        address: AbsoluteAddress(abs),
        real: RealAddress(real),
        frame,
        dat_protected,
        iep_protected,
    })
}
