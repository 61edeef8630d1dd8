//! The translation engine of a logical access: effective address (§5.1), ASCE
//! selection with access-register translation (§5.2, §5.3), and the per-fragment loop
//! of LAP, DAT walk or prefixing, and (for CHECK_ONLY) the key check (§5.4).
//!
//! Everything here reads guest state only, except [`record_references`], the one place
//! where translation sets reference bits on the frames of the structures it read (§10.3).
#![forbid(unsafe_code)]

use crate::addr::{AbsoluteAddress, EffectiveAddress, RealAddress};
use crate::dat::art::{ArtTrace, ar_translation};
use crate::dat::walk::{self, DatException, FrameSize, Trace, WalkContext};
use crate::dat::{Asce, Translation};
use crate::exception::{
    AccessError, AccessMode, Errno, ExceptionContext, ProgramInterruption,
    ProgramInterruptionCode as Pgm, ProtectionType,
};
use crate::keys::{AccessKey, StorageKey};
use crate::protection::{self, Overrides};
use crate::vcpu::{AddressSpaceControl, AddressingMode, Vcpu, cr0};
use crate::vm::{Facilities, Vm};

/// The largest number of pages one memop touches: 64 KiB starting mid-page (§5.4).
pub const MAX_PAGES: usize = 17;

/// `kvm_s390_logical_to_effective` (§5.1).
#[inline]
pub fn effective_address(vcpu: &Vcpu, ga: u64) -> EffectiveAddress {
    EffectiveAddress(match vcpu.psw.addressing_mode() {
        AddressingMode::Bits64 => ga,
        AddressingMode::Bits31 => ga & 0x7FFF_FFFF,
        AddressingMode::Bits24 => ga & 0x00FF_FFFF,
    })
}

/// The context `trans_exc` needs to build a record for this vCPU and access.
#[inline]
pub fn exception_context(vcpu: &Vcpu, ga: u64, ar: u8, mode: AccessMode) -> ExceptionContext {
    ExceptionContext {
        address: EffectiveAddress(ga),
        ar,
        mode,
        psw_as: vcpu.psw.as_bits(),
    }
}

/// `get_vcpu_asce` (§5.2): the ASCE for the access, or the AR-translation exception.
/// `ga` is only used for the TEID of an ALC protection exception.
pub fn select_asce(
    vm: &Vm,
    vcpu: &Vcpu,
    ga: u64,
    ar: u8,
    mode: AccessMode,
    art: &mut ArtTrace,
) -> Result<Asce, AccessError> {
    if !vcpu.psw.dat() {
        return Ok(Asce::REAL_SPACE);
    }
    // §5.2 step 2: an instruction fetch uses the home space in home mode and the
    // primary space in every other mode (no AR translation). The TEID still records
    // the PSW's AS bits as they are (§9.2).
    if mode == AccessMode::InstructionFetch {
        return Ok(Asce(match vcpu.psw.address_space() {
            AddressSpaceControl::Home => vcpu.cr[13],
            _ => vcpu.cr[1],
        }));
    }
    match vcpu.psw.address_space() {
        AddressSpaceControl::Primary => Ok(Asce(vcpu.cr[1])),
        AddressSpaceControl::Secondary => Ok(Asce(vcpu.cr[7])),
        AddressSpaceControl::Home => Ok(Asce(vcpu.cr[13])),
        AddressSpaceControl::AccessRegister => {
            if ar >= 16 {
                return Err(Errno::Einval.into());
            }
            let r = ar_translation(vm.storage(), vcpu, ar, mode, art);
            record_art_references(vm, art);
            r.map_err(|code| {
                AccessError::Program(ProgramInterruption::new(
                    code,
                    &exception_context(vcpu, ga, ar, mode),
                    ProtectionType::AccessListControlled,
                    false,
                ))
            })
        }
    }
}

/// The DAT walk context for this vCPU (§5.6 set-up).
#[inline]
pub fn walk_context(vm: &Vm, vcpu: &Vcpu, asce: Asce, mode: AccessMode) -> WalkContext {
    let f: &Facilities = vm.facilities();
    let edat1 = vcpu.cr0(cr0::EDAT) && f.has(Facilities::EDAT1);
    WalkContext::new(asce, mode)
        .with_edat(edat1, edat1 && f.has(Facilities::EDAT2))
        .with_iep(vcpu.cr0(cr0::IEP) && f.has(Facilities::IEP))
        .with_prefix(vcpu.effective_prefix())
}

/// Set the reference bit on every frame holding a DAT table entry the walk read
/// (§10.3, §11 item 15): the host's loads of guest tables reference them.
#[inline]
pub fn record_references(vm: &Vm, trace: &Trace) {
    for e in trace.entries() {
        vm.storage().mark(e.address, StorageKey::REFERENCE);
    }
}

/// Likewise for the ALD, ALE, ASTE and authority-table bytes of AR translation.
fn record_art_references(vm: &Vm, art: &ArtTrace) {
    for a in art.addresses() {
        vm.storage().mark(a, StorageKey::REFERENCE);
    }
}

/// Translate one fragment's first byte (effective address `ga`): DAT walk with the
/// vCPU's context, or prefixing when DAT is off (§5.4). Sets reference bits on the
/// table frames read. Returns the translation or the code and protection type.
///
/// The walk goes through the vCPU's translation cache ([`crate::tlb`]), which returns
/// exactly what the walk returns and leaves the keys as the walk leaves them.
#[inline(always)]
pub fn translate_fragment(
    vm: &Vm,
    vcpu: &Vcpu,
    asce: Asce,
    ga: u64,
    mode: AccessMode,
) -> Result<Translation, DatException> {
    let ctx = vcpu.psw.dat().then(|| walk_context(vm, vcpu, asce, mode));
    translate_in(vm, vcpu, ctx.as_ref(), ga)
}

/// [`translate_fragment`] with the walk context computed once per access (`None`
/// with DAT off).
#[inline(always)]
fn translate_in(
    vm: &Vm,
    vcpu: &Vcpu,
    ctx: Option<&WalkContext>,
    ga: u64,
) -> Result<Translation, DatException> {
    if let Some(ctx) = ctx {
        // The walk's own result type all the way: no re-packing on the hot path.
        vcpu.tlb.translate(vm.storage(), ga, ctx)
    } else {
        let abs = vcpu.real_to_absolute(RealAddress(ga));
        if !vm.storage().in_memory(abs) {
            return Err(DatException {
                code: Pgm::ADDRESSING,
                prot: ProtectionType::Dummy,
            });
        }
        Ok(Translation {
            address: abs,
            real: RealAddress(ga),
            frame: FrameSize::Size4K,
            dat_protected: false,
            iep_protected: false,
        })
    }
}

/// [`translate_in`] reduced to the absolute address, as accesses use it (the cache's
/// address-only lookup, see [`crate::tlb::TranslationCache::translate_address`]).
#[inline(always)]
fn translate_in_address(
    vm: &Vm,
    vcpu: &Vcpu,
    ctx: Option<&WalkContext>,
    ga: u64,
) -> Result<AbsoluteAddress, DatException> {
    match ctx {
        Some(ctx) => vcpu.tlb.translate_address(vm.storage(), ga, ctx),
        None => translate_in(vm, vcpu, None, ga).map(|t| t.address),
    }
}

/// The key check of CHECK_ONLY and of a translation with key (§8.3 vCPU rule),
/// done on the fragment at effective `ga`, length `len`, absolute `gpa`.
#[inline]
fn check_fragment_key(
    vm: &Vm,
    key: AccessKey,
    overrides: &Overrides,
    mode: AccessMode,
    gpa: AbsoluteAddress,
    ga: u64,
    len: u64,
) -> Result<(), Pgm> {
    if key.is_zero() {
        return Ok(());
    }
    // §10.2: the key lookup fails with addressing outside memory.
    let sk = vm.storage_key(gpa).map_err(|_| Pgm::ADDRESSING)?;
    if overrides.permits(key, sk, mode, ga, len) {
        Ok(())
    } else {
        Err(Pgm::PROTECTION)
    }
}

/// `guest_range_to_gpas` (§5.4): for each fragment of `[ga, ga+len)` in order, LAP
/// (store), translation, and with `key` nonzero the key check; `on_page` receives each
/// fragment's absolute address. The first failure is returned with the record
/// `trans_exc` builds for it. `ga` is the logical address; the addressing mode is
/// applied at each fragment start.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn range_to_gpas(
    vm: &Vm,
    vcpu: &Vcpu,
    ga: u64,
    ar: u8,
    len: u64,
    asce: Asce,
    mode: AccessMode,
    key: AccessKey,
    mut on_page: impl FnMut(AbsoluteAddress),
) -> Result<(), AccessError> {
    let lap = protection::low_address_protection_enabled(vcpu, asce.private());
    let overrides = Overrides::for_access(vcpu, mode, asce.private());
    let ctx = vcpu.psw.dat().then(|| walk_context(vm, vcpu, asce, mode));
    let mut ga = ga;
    let mut len = len;
    let mut offset = ga & 0xFFF;
    while len > 0 {
        let frag = (4096 - offset).min(len);
        let eff = effective_address(vcpu, ga).0;
        let exc = |code, prot| {
            AccessError::Program(ProgramInterruption::new(
                code,
                &exception_context(vcpu, eff, ar, mode),
                prot,
                false,
            ))
        };
        if mode == AccessMode::Store && lap && protection::is_low_address(eff) {
            return Err(exc(Pgm::PROTECTION, ProtectionType::LowAddress));
        }
        let address =
            translate_in_address(vm, vcpu, ctx.as_ref(), eff).map_err(|e| exc(e.code, e.prot))?;
        check_fragment_key(vm, key, &overrides, mode, address, eff, frag)
            .map_err(|c| exc(c, ProtectionType::KeyControlled))?;
        on_page(address);
        offset = 0;
        ga = eff.wrapping_add(frag);
        len -= frag;
    }
    Ok(())
}

/// `guest_translate_address_with_key` (used by TPROT and the scenario `translate`
/// step, §16): translate one byte as a memop's translation phase would, with LAP, the
/// DAT walk, DAT protection and the key check with FPO and SPO.
pub fn translate_address_with_key(
    vm: &Vm,
    vcpu: &Vcpu,
    gaddr: u64,
    ar: u8,
    mode: AccessMode,
    key: AccessKey,
) -> Result<AbsoluteAddress, AccessError> {
    let ga = effective_address(vcpu, gaddr).0;
    let asce = select_asce(vm, vcpu, ga, ar, mode, &mut ArtTrace::default())?;
    let mut out = AbsoluteAddress(0);
    range_to_gpas(vm, vcpu, ga, ar, 1, asce, mode, key, |a| out = a)?;
    Ok(out)
}

/// Everything one translation did, for people debugging their tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranslationReport {
    /// The logical address given.
    pub logical: u64,
    /// The effective address (§5.1).
    pub effective: EffectiveAddress,
    /// Whether DAT was on.
    pub dat: bool,
    /// The ASCE selected, if selection succeeded.
    pub asce: Option<Asce>,
    /// What AR translation read (AR mode only).
    pub art: ArtTrace,
    /// Whether LAP applied to this access and address.
    pub low_address_protected: bool,
    /// The DAT walk's entries (empty with DAT off).
    pub trace: Trace,
    /// The walk's translation, if it succeeded.
    pub translation: Option<Translation>,
    /// The storage key of the frame, if the translation succeeded and it is in memory.
    pub storage_key: Option<StorageKey>,
    /// The final outcome: the absolute address and frame size, or the exception.
    pub result: Result<(AbsoluteAddress, FrameSize), AccessError>,
}

/// Translate one logical address step by step and report every stage (the public
/// `translate` API). The outcome equals [`translate_address_with_key`]'s; reference
/// bits are set as that function sets them.
pub fn translate(
    vm: &Vm,
    vcpu: &Vcpu,
    gaddr: u64,
    ar: u8,
    mode: AccessMode,
    key: AccessKey,
) -> TranslationReport {
    let effective = effective_address(vcpu, gaddr);
    let ga = effective.0;
    let mut report = TranslationReport {
        logical: gaddr,
        effective,
        dat: vcpu.psw.dat(),
        asce: None,
        art: ArtTrace::default(),
        low_address_protected: false,
        trace: Trace::default(),
        translation: None,
        storage_key: None,
        result: Err(AccessError::Errno(Errno::Einval)),
    };
    let asce = match select_asce(vm, vcpu, ga, ar, mode, &mut report.art) {
        Ok(a) => a,
        Err(e) => {
            report.result = Err(e);
            return report;
        }
    };
    report.asce = Some(asce);
    let exc = |code, prot| {
        AccessError::Program(ProgramInterruption::new(
            code,
            &exception_context(vcpu, ga, ar, mode),
            prot,
            false,
        ))
    };
    report.low_address_protected = mode == AccessMode::Store
        && protection::low_address_protection_enabled(vcpu, asce.private())
        && protection::is_low_address(ga);
    if report.low_address_protected {
        report.result = Err(exc(Pgm::PROTECTION, ProtectionType::LowAddress));
        return report;
    }
    let t = if vcpu.psw.dat() {
        let out = walk::walk(vm.storage(), ga, &walk_context(vm, vcpu, asce, mode));
        record_references(vm, &out.trace);
        report.trace = out.trace;
        out.result
    } else {
        translate_fragment(vm, vcpu, asce, ga, mode)
    };
    let t = match t {
        Ok(t) => t,
        Err(e) => {
            report.result = Err(exc(e.code, e.prot));
            return report;
        }
    };
    report.translation = Some(t);
    report.storage_key = vm.storage_key(t.address).ok();
    let overrides = Overrides::for_access(vcpu, mode, asce.private());
    report.result = check_fragment_key(vm, key, &overrides, mode, t.address, ga, 1)
        .map(|()| (t.address, t.frame))
        .map_err(|c| exc(c, ProtectionType::KeyControlled));
    report
}
