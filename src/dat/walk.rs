//! The DAT walk (`guest_translate_gva`, §5.6): a pure function of guest storage and
//! the translation context. It returns the absolute address or the exception, plus a
//! trace of the table entries it read; setting their reference bits (§10.3) is the
//! caller's job. The hot path uses [`walk_referencing`], the same walk setting R as
//! it reads instead of building a trace.
#![forbid(unsafe_code)]

use super::entries::{
    Asce, DesignationType, PageTableEntry, RegionTableEntry, SegmentTableEntry, TableLevel,
};
use crate::addr::{AbsoluteAddress, RealAddress};
use crate::exception::{AccessMode, ProgramInterruptionCode as Pgm, ProtectionType};
use crate::keys::StorageKey;
use crate::storage::{GuestStorage, TABLE_MARK};

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

/// The ASCE-level checks of step B (§5.6), made before any memory access, for
/// designation type `DT` (0 segment ... 3 region-first): the index bits above the
/// first table's index must be zero (ASCE-type exception), and the first index's
/// leftmost two bits must not exceed the ASCE's TL (that table's translation
/// exception). Returns the bit position of the first table's index.
#[inline(always)]
fn check_asce<const DT: usize>(asce: Asce, v: u64) -> Result<u32, Pgm> {
    // RFX, RSX, RTX and SX start at bits 53, 42, 31 and 20 of the address (counting
    // from the right), one position per designation type.
    const LENGTH_CODES: [Pgm; 4] = [
        Pgm::SEGMENT_TRANSLATION,
        Pgm::REGION_THIRD_TRANSLATION,
        Pgm::REGION_SECOND_TRANSLATION,
        Pgm::REGION_FIRST_TRANSLATION,
    ];
    let shift = 20 + 11 * DT as u32;
    // Two shifts: for a region-first table the bits above are none (v >> 64).
    if (v >> shift) >> 11 != 0 {
        return Err(Pgm::ASCE_TYPE);
    }
    if (v >> (shift + 9)) & 3 > asce.tl() {
        return Err(LENGTH_CODES[DT]);
    }
    Ok(shift)
}

/// How the walk fetches a table entry: with a trace (the pure [`walk`]) or setting
/// bits in the entry's frame key as it reads (the translation's side effect, §10.3).
trait EntrySource {
    /// The entry at absolute `addr` for `level`, or `None` if it is outside memory.
    fn fetch(&mut self, storage: &GuestStorage, level: TableLevel, addr: u64) -> Option<u64>;
}

/// Records every entry read, and the one that could not be read.
struct Tracing<'t>(&'t mut Trace);

impl EntrySource for Tracing<'_> {
    #[inline(always)]
    fn fetch(&mut self, storage: &GuestStorage, level: TableLevel, addr: u64) -> Option<u64> {
        match storage.read_u64(AbsoluteAddress(addr)) {
            Ok(e) => {
                self.0.push(level, AbsoluteAddress(addr), e);
                Some(e)
            }
            Err(_) => {
                self.0.unreadable = Some((level, AbsoluteAddress(addr)));
                None
            }
        }
    }
}

/// Sets `bits` (R, and the translation cache's table marker) on each entry's frame.
struct Referencing(u8);

impl EntrySource for Referencing {
    #[inline(always)]
    fn fetch(&mut self, storage: &GuestStorage, _level: TableLevel, addr: u64) -> Option<u64> {
        storage.read_table_entry(addr, self.0)
    }
}

/// Translate the effective address `v` (§5.6, §5.7). Checks run in the kernel's order:
/// ASCE checks, then per level addressing of the entry, invalid bit, table type and
/// length/offset or private-space checks, then DAT protection (store), then addressing
/// of the frame.
///
/// Pure: reference bits are not set; the trace says which entries to set them on.
pub fn walk(storage: &GuestStorage, v: u64, ctx: &WalkContext) -> WalkOutcome {
    let mut trace = Trace::default();
    let result = walk_inner(storage, v, ctx, &mut Tracing(&mut trace));
    WalkOutcome { result, trace }
}

/// The walk with its one side effect and no trace: R is set on the frame of every
/// entry read, as the kernel's loads set it (§10.3, §11 item 15). The result, and the
/// keys afterwards, equal [`walk`] followed by setting R on every traced entry's frame.
#[inline]
pub fn walk_referencing(
    storage: &GuestStorage,
    v: u64,
    ctx: &WalkContext,
) -> Result<Translation, DatException> {
    walk_inner(storage, v, ctx, &mut Referencing(StorageKey::REFERENCE))
}

/// [`walk_referencing`] that also sets the table marker (for the translation cache).
#[inline]
pub(crate) fn walk_marking(
    storage: &GuestStorage,
    v: u64,
    ctx: &WalkContext,
) -> Result<Translation, DatException> {
    walk_inner(
        storage,
        v,
        ctx,
        &mut Referencing(StorageKey::REFERENCE | TABLE_MARK),
    )
}

/// An entry's DAT-protection bit, at the same position in every entry format (§8.2).
const P: u64 = PageTableEntry::P;
/// An entry's IEP bit, likewise (§8.5).
const IEP: u64 = PageTableEntry::IEP;

/// The fields of a region-first or region-second entry that the common case pins
/// down: valid, the expected TT, and a full-length table (TF 0, TL 3), with which no
/// check of the entry can fail whatever the next index.
const REGION_CHECKED: u64 = RegionTableEntry::I
    | (3 << RegionTableEntry::TT_SHIFT)
    | (3 << RegionTableEntry::TF_SHIFT)
    | RegionTableEntry::TL;
/// Likewise for a region-third entry: also CR 0 and FC 0 (no large frame).
const REGION_THIRD_CHECKED: u64 = REGION_CHECKED | RegionTableEntry::CR | RegionTableEntry::FC;
/// Likewise for a segment-table entry: valid, TT 0, CS 0, FC 0.
const SEGMENT_CHECKED: u64 = SegmentTableEntry::I
    | (3 << SegmentTableEntry::TT_SHIFT)
    | SegmentTableEntry::CS
    | SegmentTableEntry::FC;
/// Likewise for a page-table entry: valid, bit 52 zero.
const PAGE_CHECKED: u64 = PageTableEntry::I | PageTableEntry::Z;

/// A region-first or region-second table entry (§5.6), all checks in the kernel's
/// order: invalid → `invalid`; TT ≠ `tt` → translation specification; the next
/// level's index bits 0-1 outside TF..TL → `length`. Returns the next entry's
/// address: the next table's origin plus the next level's index.
#[inline(always)]
fn upper_region_entry(
    e: u64,
    v: u64,
    tt: u64,
    lower: TableLevel,
    codes: (Pgm, Pgm),
) -> Result<u64, DatException> {
    let rte = RegionTableEntry(e);
    // The common case in one test (see `REGION_CHECKED`).
    if e & REGION_CHECKED != (tt << RegionTableEntry::TT_SHIFT) | RegionTableEntry::TL {
        if rte.invalid() {
            return Err(DatException::new(codes.0));
        }
        if rte.tt() != tt {
            return Err(DatException::new(Pgm::TRANSLATION_SPECIFICATION));
        }
        let x01 = lower.index_top2(v);
        if x01 < rte.tf() || x01 > rte.tl() {
            return Err(DatException::new(codes.1));
        }
    }
    Ok(rte.origin().wrapping_add(lower.index(v) * 8))
}

/// The walk proper, unrolled: it enters the chain of levels at the ASCE's designation
/// type ([`walk_from`], one copy per type) and falls through to the page table.
/// `source` reads each entry (and records it or sets its frame's R).
///
/// Each entry is first tested against the fields that make every check pass (one
/// mask and compare); only an entry that differs goes through the checks one by one,
/// in the kernel's order, to find its exception or its large frame.
#[inline(always)]
fn walk_inner(
    storage: &GuestStorage,
    v: u64,
    ctx: &WalkContext,
    source: &mut impl EntrySource,
) -> Result<Translation, DatException> {
    let asce = ctx.asce;

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
    match asce.dt() {
        DesignationType::RegionFirst => walk_from::<3>(storage, v, ctx, source),
        DesignationType::RegionSecond => walk_from::<2>(storage, v, ctx, source),
        DesignationType::RegionThird => walk_from::<1>(storage, v, ctx, source),
        DesignationType::Segment => walk_from::<0>(storage, v, ctx, source),
    }
}

/// The walk from the first table of designation type `DT` (0 segment ... 3
/// region-first) down: one copy per type, so that the index positions and the chain
/// of levels are constants.
#[inline(always)]
fn walk_from<const DT: usize>(
    storage: &GuestStorage,
    v: u64,
    ctx: &WalkContext,
    source: &mut impl EntrySource,
) -> Result<Translation, DatException> {
    let asce = ctx.asce;
    let shift = check_asce::<DT>(asce, v).map_err(DatException::new)?;
    let mut addr = asce.origin().wrapping_add(((v >> shift) & 0x7FF) * 8);
    // The region entries' P bits count only with EDAT-1 (§11 item 5): gathered here.
    let mut region_bits = 0u64;
    // §11 item 1: entries are read at absolute addresses, no prefixing; outside
    // memory is PGM 5.
    macro_rules! fetch {
        ($level:expr) => {
            match source.fetch(storage, $level, addr) {
                Some(e) => e,
                None => return Err(DatException::new(Pgm::ADDRESSING)),
            }
        };
    }
    if DT == 3 {
        let e = fetch!(TableLevel::RegionFirst);
        region_bits |= e;
        addr = upper_region_entry(
            e,
            v,
            3,
            TableLevel::RegionSecond,
            (
                Pgm::REGION_FIRST_TRANSLATION,
                Pgm::REGION_SECOND_TRANSLATION,
            ),
        )?;
    }
    if DT >= 2 {
        let e = fetch!(TableLevel::RegionSecond);
        region_bits |= e;
        addr = upper_region_entry(
            e,
            v,
            2,
            TableLevel::RegionThird,
            (
                Pgm::REGION_SECOND_TRANSLATION,
                Pgm::REGION_THIRD_TRANSLATION,
            ),
        )?;
    }
    if DT >= 1 {
        let e = fetch!(TableLevel::RegionThird);
        if e & REGION_THIRD_CHECKED != (1 << RegionTableEntry::TT_SHIFT) | RegionTableEntry::TL {
            let rtte = RegionTableEntry(e);
            if rtte.invalid() {
                return Err(DatException::new(Pgm::REGION_THIRD_TRANSLATION));
            }
            if rtte.tt() != 1 {
                return Err(DatException::new(Pgm::TRANSLATION_SPECIFICATION));
            }
            if e & RegionTableEntry::CR != 0 && asce.private() && ctx.edat2 {
                return Err(DatException::new(Pgm::TRANSLATION_SPECIFICATION));
            }
            if rtte.fc() && ctx.edat2 {
                // The frame's own P counts always, the upper entries' with EDAT-1.
                let dat_prot = (ctx.edat1 && region_bits & P != 0) || e & P != 0;
                let r = (e & RegionTableEntry::RFAA) | (v & 0x7FFF_FFFF);
                return finish(
                    storage,
                    ctx,
                    r,
                    r,
                    FrameSize::Size2G,
                    dat_prot,
                    e & IEP != 0,
                );
            }
            // §11 item 4: FC without EDAT-2 is read as FC=0.
            let sx01 = TableLevel::Segment.index_top2(v);
            if sx01 < rtte.tf() || sx01 > rtte.tl() {
                return Err(DatException::new(Pgm::SEGMENT_TRANSLATION));
            }
        }
        region_bits |= e;
        addr = (e & RegionTableEntry::ORIGIN).wrapping_add(TableLevel::Segment.index(v) * 8);
    }
    let region_prot = ctx.edat1 && region_bits & P != 0;
    let ste = fetch!(TableLevel::Segment);
    if ste & SEGMENT_CHECKED != 0 {
        let entry = SegmentTableEntry(ste);
        if entry.invalid() {
            return Err(DatException::new(Pgm::SEGMENT_TRANSLATION));
        }
        if entry.tt() != 0 {
            return Err(DatException::new(Pgm::TRANSLATION_SPECIFICATION));
        }
        if ste & SegmentTableEntry::CS != 0 && asce.private() {
            return Err(DatException::new(Pgm::TRANSLATION_SPECIFICATION));
        }
        if entry.fc() && ctx.edat1 {
            let dat_prot = region_prot || ste & P != 0;
            let r = (ste & SegmentTableEntry::SFAA) | (v & 0xF_FFFF);
            return finish(
                storage,
                ctx,
                r,
                r,
                FrameSize::Size1M,
                dat_prot,
                ste & IEP != 0,
            );
        }
    }
    addr = (ste & SegmentTableEntry::PTO).wrapping_add(TableLevel::Page.index(v) * 8);
    let pte = fetch!(TableLevel::Page);
    if pte & PAGE_CHECKED != 0 {
        if PageTableEntry(pte).invalid() {
            return Err(DatException::new(Pgm::PAGE_TRANSLATION));
        }
        return Err(DatException::new(Pgm::TRANSLATION_SPECIFICATION));
    }
    let dat_prot = region_prot || (ste | pte) & P != 0;
    let r = (pte & PageTableEntry::PFRA) | (v & 0xFFF);
    let a = real_to_absolute(r, ctx.prefix);
    finish(
        storage,
        ctx,
        r,
        a,
        FrameSize::Size4K,
        dat_prot,
        pte & IEP != 0,
    )
}

/// The ABSOLUTE step of §5.6: DAT protection before addressing of the frame.
#[inline(always)]
fn finish(
    storage: &GuestStorage,
    ctx: &WalkContext,
    real: u64,
    abs: u64,
    frame: FrameSize,
    dat_protected: bool,
    iep_protected: bool,
) -> Result<Translation, DatException> {
    protection_checks(ctx, dat_protected, iep_protected)?;
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

/// Steps 1 and 2 of ABSOLUTE (§5.6): DAT protection for a store, IEP for an
/// instruction fetch. Shared with the translation cache, which re-derives these
/// mode-dependent outcomes from a cached walk exactly as the walk does.
#[inline(always)]
pub(crate) fn protection_checks(
    ctx: &WalkContext,
    dat_protected: bool,
    iep_protected: bool,
) -> Result<(), DatException> {
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
    Ok(())
}
