//! The DAT walk (`guest_translate_gva`, §5.6): a pure function of guest storage and
//! the translation context. It returns the absolute address or the exception, plus a
//! trace of the table entries it read; setting their reference bits (§10.3) is the
//! caller's job. The hot path uses [`walk_referencing`], the same walk setting R as
//! it reads instead of building a trace.
#![forbid(unsafe_code)]

use super::entries::{Asce, PageTableEntry, RegionTableEntry, SegmentTableEntry, TableLevel};
use crate::addr::{AbsoluteAddress, RealAddress};
use crate::exception::{AccessMode, ProgramInterruptionCode as Pgm, ProtectionType};
use crate::keys::StorageKey;
use crate::storage::{GuestStorage, TABLE_MARK};

/// Everything the walk needs besides storage and the address.
///
/// The facility bits and the prefix live in one control word, built once per access:
/// the walk tests its bits, and the translation cache ([`crate::tlb`]) keys its entries
/// on it as it is. The prefix is held as the kernel holds it (`kvm_s390_get_prefix`:
/// 31 bits, 8 KiB aligned), which prefixing (§5.7) relies on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WalkContext {
    /// The ASCE selected for the access (§5.2).
    pub asce: Asce,
    /// The access mode.
    pub mode: AccessMode,
    /// The effective prefix, with [`Self::EDAT1`], [`Self::EDAT2`], [`Self::IEP`] and
    /// [`Self::ONE`] in the bits below it.
    control: u64,
}

impl WalkContext {
    /// Control-word bit, always set: a control word is never 0 (the value the
    /// translation cache's empty entries hold).
    pub(crate) const ONE: u64 = 1;
    /// Control-word bit: EDAT-1 applies (CR0 bit 40 and facility 8).
    pub(crate) const EDAT1: u64 = 2;
    /// Control-word bit: EDAT-2 applies (EDAT-1 and facility 78).
    pub(crate) const EDAT2: u64 = 4;
    /// Control-word bit: IEP applies (CR0 bit 43 and facility 130).
    pub(crate) const IEP: u64 = 8;
    /// The prefix bits that take effect (§4, as `Vcpu::effective_prefix`).
    pub(crate) const PREFIX: u64 = crate::vcpu::PREFIX_MASK as u64;

    /// A context for `asce` and `mode` with no EDAT, no IEP and prefix 0.
    pub const fn new(asce: Asce, mode: AccessMode) -> Self {
        Self {
            asce,
            mode,
            control: Self::ONE,
        }
    }
    /// With EDAT-1 and EDAT-2 as given.
    #[must_use]
    pub const fn with_edat(self, edat1: bool, edat2: bool) -> Self {
        let c = self.control & !(Self::EDAT1 | Self::EDAT2);
        Self {
            control: c | (edat1 as u64 * Self::EDAT1) | (edat2 as u64 * Self::EDAT2),
            ..self
        }
    }
    /// With IEP as given.
    #[must_use]
    pub const fn with_iep(self, iep: bool) -> Self {
        Self {
            control: (self.control & !Self::IEP) | (iep as u64 * Self::IEP),
            ..self
        }
    }
    /// With the prefix register `prefix`; only its effective bits are kept.
    #[must_use]
    pub const fn with_prefix(self, prefix: u64) -> Self {
        Self {
            control: (self.control & !Self::PREFIX) | (prefix & Self::PREFIX),
            ..self
        }
    }
    /// With another access mode.
    #[must_use]
    pub const fn with_mode(self, mode: AccessMode) -> Self {
        Self { mode, ..self }
    }
    /// Whether EDAT-1 applies.
    #[inline(always)]
    pub const fn edat1(&self) -> bool {
        self.control & Self::EDAT1 != 0
    }
    /// Whether EDAT-2 applies.
    #[inline(always)]
    pub const fn edat2(&self) -> bool {
        self.control & Self::EDAT2 != 0
    }
    /// Whether IEP applies.
    #[inline(always)]
    pub const fn iep(&self) -> bool {
        self.control & Self::IEP != 0
    }
    /// The effective prefix (8 KiB aligned, below 2 GiB).
    #[inline(always)]
    pub const fn prefix(&self) -> u64 {
        self.control & Self::PREFIX
    }
    /// The control word: prefix and facility bits, never 0.
    #[inline(always)]
    pub(crate) const fn control(&self) -> u64 {
        self.control
    }
}

impl core::fmt::Debug for WalkContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WalkContext")
            .field("asce", &self.asce)
            .field("mode", &self.mode)
            .field("edat1", &self.edat1())
            .field("edat2", &self.edat2())
            .field("iep", &self.iep())
            .field("prefix", &format_args!("{:#x}", self.prefix()))
            .finish()
    }
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
// The small fields first (`repr(C)`): a `Result` keeps its tag in `frame`, and a
// `DatException` then shares the bytes after it, not the addresses, so that a walk's
// ending paths merge without splitting an address into pieces (fewer instructions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Translation {
    /// The frame size.
    pub frame: FrameSize,
    /// The accumulated DAT-protection bit (§8.2).
    pub dat_protected: bool,
    /// The leaf's IEP bit (§8.5).
    pub iep_protected: bool,
    /// The absolute address of the byte.
    pub address: AbsoluteAddress,
    /// The real address before prefixing (equal to `address` for large frames).
    pub real: RealAddress,
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

/// Prefixing (§5.7) with an effective prefix (8 KiB aligned): the two 8 KiB blocks at 0
/// and at the prefix trade places, which for an aligned prefix is an exclusive or.
#[inline(always)]
pub(crate) const fn prefixed(r: u64, prefix: u64) -> u64 {
    let swapped = r ^ prefix;
    // r in the block at 0, or in the prefix's block (then r ^ prefix is below 8 KiB).
    if r < 0x2000 || swapped < 0x2000 {
        swapped
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
    // One compare for both in the common case: the index's leftmost two bits with
    // every bit above them are at most TL (at most 3) only if those bits above are
    // zero and the two bits pass. Either failing is then told apart in the kernel's
    // order, the ASCE type first.
    let top = v >> (shift + 9);
    if top > asce.tl() {
        if top >> 2 != 0 {
            return Err(Pgm::ASCE_TYPE);
        }
        return Err(LENGTH_CODES[DT]);
    }
    Ok(shift)
}

/// How a walk that does not translate ends.
enum Stop<R> {
    /// A program interruption: the walk's result.
    Exception(DatException),
    /// The entry source could not answer here (see [`IfMarked`]): nothing was
    /// changed, and the general walk is to be run instead.
    Retry(R),
}

impl<R> From<DatException> for Stop<R> {
    #[inline(always)]
    fn from(e: DatException) -> Self {
        Self::Exception(e)
    }
}

impl<R> From<Pgm> for Stop<R> {
    #[inline(always)]
    fn from(code: Pgm) -> Self {
        Self::Exception(DatException::new(code))
    }
}

/// How the walk reads storage: table entries (with a trace, setting bits in the entry
/// frame's key as it reads, the translation's side effect, §10.3, or only where that
/// side effect is already done), and whether a frame is in memory.
trait EntrySource {
    /// What [`Stop::Retry`] carries: `Infallible` for the sources that always answer.
    type Retry;
    /// The entry at absolute `addr` for `level`; outside memory that is PGM 5 (§11
    /// item 1).
    fn fetch(
        &mut self,
        storage: &GuestStorage,
        level: TableLevel,
        addr: u64,
    ) -> Result<u64, Stop<Self::Retry>>;
    /// Whether the frame at absolute `abs` is in memory.
    #[inline(always)]
    fn in_memory(&self, storage: &GuestStorage, abs: u64) -> Result<bool, Self::Retry> {
        Ok(storage.in_memory(AbsoluteAddress(abs)))
    }
}

/// Records every entry read, and the one that could not be read.
struct Tracing<'t>(&'t mut Trace);

impl EntrySource for Tracing<'_> {
    type Retry = core::convert::Infallible;
    #[inline(always)]
    fn fetch(
        &mut self,
        storage: &GuestStorage,
        level: TableLevel,
        addr: u64,
    ) -> Result<u64, Stop<Self::Retry>> {
        match storage.read_u64(AbsoluteAddress(addr)) {
            Ok(e) => {
                self.0.push(level, AbsoluteAddress(addr), e);
                Ok(e)
            }
            Err(_) => {
                self.0.unreadable = Some((level, AbsoluteAddress(addr)));
                Err(Pgm::ADDRESSING.into())
            }
        }
    }
}

/// Sets `bits` (R, and the translation cache's table marker) on each entry's frame.
struct Referencing(u8);

impl EntrySource for Referencing {
    type Retry = core::convert::Infallible;
    #[inline(always)]
    fn fetch(
        &mut self,
        storage: &GuestStorage,
        _level: TableLevel,
        addr: u64,
    ) -> Result<u64, Stop<Self::Retry>> {
        storage
            .read_table_entry(addr, self.0)
            .ok_or(Pgm::ADDRESSING.into())
    }
}

/// [`Referencing`] for the common case only: entries in the first memslot whose frame
/// already has `bits`, frames in the first memslot. Anything else is
/// [`Stop::Retry`]. It changes nothing and calls nothing (no atomic update, no
/// slow-path call); since setting bits already set changes nothing, its result is
/// the general walk's.
struct IfMarked(u8);

impl EntrySource for IfMarked {
    type Retry = ();
    #[inline(always)]
    fn fetch(
        &mut self,
        storage: &GuestStorage,
        _level: TableLevel,
        addr: u64,
    ) -> Result<u64, Stop<()>> {
        storage
            .read_table_entry_if_marked(addr, self.0)
            .ok_or(Stop::Retry(()))
    }
    #[inline(always)]
    fn in_memory(&self, storage: &GuestStorage, abs: u64) -> Result<bool, ()> {
        if storage.in_first_slot(abs) {
            Ok(true)
        } else {
            Err(())
        }
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
    let result = always_answers(walk_inner(storage, v, ctx, &mut Tracing(&mut trace)));
    WalkOutcome { result, trace }
}

/// The result of a walk whose source always answers.
#[inline(always)]
fn always_answers(
    r: Result<Translation, Stop<core::convert::Infallible>>,
) -> Result<Translation, DatException> {
    match r {
        Ok(t) => Ok(t),
        Err(Stop::Exception(e)) => Err(e),
        Err(Stop::Retry(never)) => match never {},
    }
}

/// The walk with its one side effect and no trace: R is set on the frame of every
/// entry read, as the kernel's loads set it (§10.3, §11 item 15). The result, and the
/// keys afterwards, equal [`walk`] followed by setting R on every traced entry's frame.
// Always inlined: kept out of line, a caller's loop pays a call with six saved
// registers and the result through memory (10.8 → 9.0 ns, docs/performance.md).
#[inline(always)]
pub fn walk_referencing(
    storage: &GuestStorage,
    v: u64,
    ctx: &WalkContext,
) -> Result<Translation, DatException> {
    walk_setting(storage, v, ctx, StorageKey::REFERENCE)
}

/// [`walk_referencing`] that also sets the table marker (for the translation cache).
///
/// The general walk only, without the call-free walk in front: inside the cache's
/// miss path, which goes on to fill an entry, the two walks' results merge through
/// memory, and a miss measured 25 ns instead of 20 (see docs/performance.md).
#[inline]
pub(crate) fn walk_marking(
    storage: &GuestStorage,
    v: u64,
    ctx: &WalkContext,
) -> Result<Translation, DatException> {
    always_answers(walk_inner(
        storage,
        v,
        ctx,
        &mut Referencing(StorageKey::REFERENCE | TABLE_MARK),
    ))
}

/// The walk setting `bits` on every entry's frame: first the call-free walk over
/// frames that have them already (the common case: a walk repeated), and if that
/// cannot answer, the general walk from the start.
#[inline(always)]
fn walk_setting(
    storage: &GuestStorage,
    v: u64,
    ctx: &WalkContext,
    bits: u8,
) -> Result<Translation, DatException> {
    match walk_inner(storage, v, ctx, &mut IfMarked(bits)) {
        Ok(t) => Ok(t),
        Err(Stop::Exception(e)) => Err(e),
        Err(Stop::Retry(())) => walk_setting_general(storage, v, ctx, bits),
    }
}

/// The general walk behind [`walk_setting`].
#[inline(never)]
fn walk_setting_general(
    storage: &GuestStorage,
    v: u64,
    ctx: &WalkContext,
    bits: u8,
) -> Result<Translation, DatException> {
    always_answers(walk_inner(storage, v, ctx, &mut Referencing(bits)))
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
fn walk_inner<S: EntrySource>(
    storage: &GuestStorage,
    v: u64,
    ctx: &WalkContext,
    source: &mut S,
) -> Result<Translation, Stop<S::Retry>> {
    let asce = ctx.asce;

    // Step A: a real-space ASCE translates v as a real address (§5.6).
    if asce.real_space() {
        return finish(
            storage,
            source,
            ctx,
            Translation {
                address: AbsoluteAddress(prefixed(v, ctx.prefix())),
                real: RealAddress(v),
                frame: FrameSize::Size4K,
                dat_protected: false,
                iep_protected: false,
            },
        );
    }
    // The designation type's two bits tested one by one: two predicted branches
    // instead of an indirect jump through a table.
    let dt_high = asce.0 & (2 << Asce::DT_SHIFT) != 0;
    let dt_low = asce.0 & (1 << Asce::DT_SHIFT) != 0;
    match (dt_high, dt_low) {
        (true, true) => walk_from::<3, S>(storage, v, ctx, source),
        (true, false) => walk_from::<2, S>(storage, v, ctx, source),
        (false, true) => walk_from::<1, S>(storage, v, ctx, source),
        (false, false) => walk_from::<0, S>(storage, v, ctx, source),
    }
}

/// The walk from the first table of designation type `DT` (0 segment ... 3
/// region-first) down: one copy per type, so that the index positions and the chain
/// of levels are constants.
#[inline(always)]
fn walk_from<const DT: usize, S: EntrySource>(
    storage: &GuestStorage,
    v: u64,
    ctx: &WalkContext,
    source: &mut S,
) -> Result<Translation, Stop<S::Retry>> {
    let asce = ctx.asce;
    let shift = check_asce::<DT>(asce, v)?;
    let mut addr = asce.origin().wrapping_add(((v >> shift) & 0x7FF) * 8);
    // The region entries' P bits count only with EDAT-1 (§11 item 5): gathered here.
    let mut region_bits = 0u64;
    // §11 item 1: entries are read at absolute addresses, no prefixing; outside
    // memory is PGM 5.
    macro_rules! fetch {
        ($level:expr) => {
            source.fetch(storage, $level, addr)?
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
                return Err(Pgm::REGION_THIRD_TRANSLATION.into());
            }
            if rtte.tt() != 1 {
                return Err(Pgm::TRANSLATION_SPECIFICATION.into());
            }
            if e & RegionTableEntry::CR != 0 && asce.private() && ctx.edat2() {
                return Err(Pgm::TRANSLATION_SPECIFICATION.into());
            }
            if rtte.fc() && ctx.edat2() {
                // The frame's own P counts always, the upper entries' with EDAT-1.
                let dat_prot = (ctx.edat1() && region_bits & P != 0) || e & P != 0;
                let r = (e & RegionTableEntry::RFAA) | (v & 0x7FFF_FFFF);
                return finish(
                    storage,
                    source,
                    ctx,
                    large_frame(r, FrameSize::Size2G, dat_prot, e & IEP != 0),
                );
            }
            // §11 item 4: FC without EDAT-2 is read as FC=0.
            let sx01 = TableLevel::Segment.index_top2(v);
            if sx01 < rtte.tf() || sx01 > rtte.tl() {
                return Err(Pgm::SEGMENT_TRANSLATION.into());
            }
        }
        region_bits |= e;
        addr = (e & RegionTableEntry::ORIGIN).wrapping_add(TableLevel::Segment.index(v) * 8);
    }
    // The upper entries' P bits count only with EDAT-1 (§11 item 5), tested where a
    // translation ends: no flag stays live across the last reads (fewer spills).
    let region_p = || if ctx.edat1() { region_bits & P } else { 0 };
    let ste = fetch!(TableLevel::Segment);
    if ste & SEGMENT_CHECKED != 0 {
        let entry = SegmentTableEntry(ste);
        if entry.invalid() {
            return Err(Pgm::SEGMENT_TRANSLATION.into());
        }
        if entry.tt() != 0 {
            return Err(Pgm::TRANSLATION_SPECIFICATION.into());
        }
        if ste & SegmentTableEntry::CS != 0 && asce.private() {
            return Err(Pgm::TRANSLATION_SPECIFICATION.into());
        }
        if entry.fc() && ctx.edat1() {
            let dat_prot = (region_p() | (ste & P)) != 0;
            let r = (ste & SegmentTableEntry::SFAA) | (v & 0xF_FFFF);
            return finish(
                storage,
                source,
                ctx,
                large_frame(r, FrameSize::Size1M, dat_prot, ste & IEP != 0),
            );
        }
    }
    addr = (ste & SegmentTableEntry::PTO).wrapping_add(TableLevel::Page.index(v) * 8);
    let pte = fetch!(TableLevel::Page);
    if pte & PAGE_CHECKED != 0 {
        if PageTableEntry(pte).invalid() {
            return Err(Pgm::PAGE_TRANSLATION.into());
        }
        return Err(Pgm::TRANSLATION_SPECIFICATION.into());
    }
    let dat_prot = (region_p() | ((ste | pte) & P)) != 0;
    let r = (pte & PageTableEntry::PFRA) | (v & 0xFFF);
    let a = prefixed(r, ctx.prefix());
    finish(
        storage,
        source,
        ctx,
        Translation {
            address: AbsoluteAddress(a),
            real: RealAddress(r),
            frame: FrameSize::Size4K,
            dat_protected: dat_prot,
            iep_protected: pte & IEP != 0,
        },
    )
}

/// The translation through a 1 MiB or 2 GiB frame at real address `r`: a large
/// frame's address is absolute as it stands, no prefixing (§5.6 ABSOLUTE, §5.7).
#[inline(always)]
fn large_frame(r: u64, frame: FrameSize, dat_protected: bool, iep_protected: bool) -> Translation {
    Translation {
        address: AbsoluteAddress(r),
        real: RealAddress(r),
        frame,
        dat_protected,
        iep_protected,
    }
}

/// The ABSOLUTE step of §5.6 for the translation `t` the walk arrived at: DAT
/// protection before addressing of the frame.
#[inline(always)]
fn finish<S: EntrySource>(
    storage: &GuestStorage,
    source: &S,
    ctx: &WalkContext,
    t: Translation,
) -> Result<Translation, Stop<S::Retry>> {
    protection_checks(ctx, t.dat_protected, t.iep_protected)?;
    if !source
        .in_memory(storage, t.address.0)
        .map_err(Stop::Retry)?
    {
        return Err(Pgm::ADDRESSING.into());
    }
    Ok(t)
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
    if ctx.mode == AccessMode::InstructionFetch && iep_protected && ctx.iep() {
        return Err(DatException {
            code: Pgm::PROTECTION,
            prot: ProtectionType::InstructionExecution,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_what_the_kernel_keeps() {
        let asce = Asce(0x1_0000 | 3 << 2 | 3);
        let c = WalkContext::new(asce, AccessMode::Store);
        assert!(!c.edat1() && !c.edat2() && !c.iep());
        assert_eq!(c.prefix(), 0);
        // kvm_s390_get_prefix: 31 bits, 8 KiB aligned; the rest of the register is
        // ignored (§4).
        let c = c.with_prefix(0xFFFF_FFFF_FFFF_FFFF);
        assert_eq!(c.prefix(), 0x7FFF_E000);
        let c = c.with_edat(true, false).with_iep(true);
        assert!(c.edat1() && !c.edat2() && c.iep());
        let c = c
            .with_edat(false, true)
            .with_iep(false)
            .with_prefix(0x1_2345);
        assert!(!c.edat1() && c.edat2() && !c.iep());
        assert_eq!(c.prefix(), 0x1_2000);
        assert_eq!(c.with_mode(AccessMode::Fetch).mode, AccessMode::Fetch);
        // The control word is never 0 and tells every field apart.
        assert_ne!(WalkContext::new(asce, AccessMode::Fetch).control(), 0);
        assert_ne!(c.control(), c.with_edat(true, true).control());
        let text = format!("{c:?}");
        assert!(
            text.contains("edat2: true") && text.contains("prefix: 0x12000"),
            "{text}"
        );
    }

    #[test]
    fn prefixing_swaps_the_two_blocks() {
        // §5.7, for every kind of real address and an aligned prefix.
        for p in [0, 0x2000, 0x1_2000, 0x7FFF_E000] {
            for r in [0, 0x1FFF, 0x2000, p, p + 0x1FFF, p + 0x2000, u64::MAX] {
                let want = if r < 0x2000 {
                    r + p
                } else if r >= p && r < p + 0x2000 {
                    r - p
                } else {
                    r
                };
                assert_eq!(prefixed(r, p), want, "r {r:#x} prefix {p:#x}");
            }
        }
    }
}
