//! Guest accesses as the kernel performs them: the two-phase logical access (translate
//! every page, then move data page by page with key checks, §5.8), its CHECK_ONLY
//! variant (§5.9), the absolute access and its check (§6) and the absolute
//! compare-and-swap (§7). Reference and change bits of accessed frames are set here,
//! after each page is moved (§10.3).
#![forbid(unsafe_code)]

use crate::addr::{AbsoluteAddress, PAGE_SIZE};
use crate::dat::art::ArtTrace;
use crate::exception::{
    AccessError, AccessMode, Errno, ProgramInterruption, ProgramInterruptionCode as Pgm,
    ProtectionType,
};
use crate::keys::{AccessKey, StorageKey};
use crate::protection::Overrides;
use crate::storage::{CompareExchange, FrameAccessError};
use crate::translate::{
    MAX_PAGES, effective_address, exception_context, range_to_gpas, select_asce,
};
use crate::vcpu::Vcpu;
use crate::vm::Vm;

/// The buffer of a logical or absolute access: the destination of a fetch or the
/// source of a store.
#[derive(Debug)]
pub enum Buffer<'a> {
    /// Fetch into this buffer.
    Fetch(&'a mut [u8]),
    /// Store from this buffer.
    Store(&'a [u8]),
}

impl Buffer<'_> {
    /// The access mode.
    pub fn mode(&self) -> AccessMode {
        match self {
            Buffer::Fetch(_) => AccessMode::Fetch,
            Buffer::Store(_) => AccessMode::Store,
        }
    }
    /// The byte count.
    pub fn len(&self) -> usize {
        match self {
            Buffer::Fetch(b) => b.len(),
            Buffer::Store(b) => b.len(),
        }
    }
    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `access_guest_with_key` (§5.4, §5.8): a logical fetch or store of `buf.len()` bytes
/// at logical address `gaddr` through access register `ar` with access key `key`.
///
/// All pages are translated first (LAP, DAT, DAT protection, addressing), so those
/// exceptions leave storage untouched; then data moves page by page with the key check
/// (fetch-protection override, storage-protection override), so a key failure on a
/// later page leaves earlier pages moved and, for a store, terminates (§9.4).
///
/// On an exception a fetch buffer is left unchanged, as the ioctl's user buffer is
/// (the kernel fetches into a scratch buffer and copies it out only on success, §3.6),
/// so callers may fetch straight into the user's memory.
pub fn access_logical(
    vm: &Vm,
    vcpu: &Vcpu,
    gaddr: u64,
    ar: u8,
    mut buf: Buffer<'_>,
    key: AccessKey,
) -> Result<(), AccessError> {
    let len = buf.len();
    if len == 0 {
        return Ok(());
    }
    let mode = buf.mode();
    let ga = effective_address(vcpu, gaddr).0;
    let asce = select_asce(vm, vcpu, ga, ar, mode, &mut ArtTrace::default())?;
    let nr_pages = (((ga & 0xFFF) + len as u64 - 1) >> 12) as usize + 1;
    if nr_pages > MAX_PAGES {
        // The ioctl never gets here (size <= 64 KiB); library callers get -E2BIG.
        return Err(Errno::E2big.into());
    }
    let overrides = Overrides::for_access(vcpu, mode, asce.private());

    // Phase 1: translate every page with key 0 (no key check, §5.4).
    let mut gpas = [AbsoluteAddress(0); MAX_PAGES];
    let mut n = 0;
    range_to_gpas(
        vm,
        vcpu,
        ga,
        ar,
        len as u64,
        asce,
        mode,
        AccessKey::ZERO,
        |a| {
            gpas[n] = a;
            n += 1;
        },
    )?;

    // Phase 2: move data page by page (§5.8).
    if let Buffer::Fetch(b) = &mut buf {
        return fetch_pages(vm, vcpu, &overrides, &gpas[..n], ga, ar, b, key);
    }
    let mut ga = ga;
    let mut done = 0usize;
    for (idx, &gpa) in gpas[..n].iter().enumerate() {
        let frag = (PAGE_SIZE - gpa.page_offset()).min((len - done) as u64) as usize;
        let r = move_page_with_key(vm, &overrides, gpa, ga, &mut buf, done, frag, key);
        if let Err(code) = r {
            let terminate = mode == AccessMode::Store && idx > 0;
            let prot = if code == Pgm::PROTECTION {
                ProtectionType::KeyControlled
            } else {
                ProtectionType::Dummy
            };
            return Err(AccessError::Program(ProgramInterruption::new(
                code,
                &exception_context(vcpu, ga, ar, mode),
                prot,
                terminate,
            )));
        }
        done += frag;
        ga = effective_address(vcpu, ga.wrapping_add(frag as u64)).0;
    }
    Ok(())
}

/// The data phase of a logical fetch (§5.8) into `buf`, leaving `buf` unchanged on an
/// exception (see [`fetch_fragments`]).
#[allow(clippy::too_many_arguments)]
fn fetch_pages(
    vm: &Vm,
    vcpu: &Vcpu,
    overrides: &Overrides,
    gpas: &[AbsoluteAddress],
    ga: u64,
    ar: u8,
    buf: &mut [u8],
    key: AccessKey,
) -> Result<(), AccessError> {
    let len = buf.len();
    let permit = |sk: StorageKey, ga: u64, frag: usize| {
        overrides.permits(key, sk, AccessMode::Fetch, ga, frag as u64)
    };
    let exception = |(ga, code): (u64, Pgm)| {
        let prot = if code == Pgm::PROTECTION {
            ProtectionType::KeyControlled
        } else {
            ProtectionType::Dummy
        };
        AccessError::Program(ProgramInterruption::new(
            code,
            &exception_context(vcpu, ga, ar, AccessMode::Fetch),
            prot,
            false,
        ))
    };
    if let [gpa] = gpas {
        // One page: the whole buffer.
        let frags = || core::iter::once((*gpa, len, ga));
        return fetch_fragments(vm, frags, buf, permit).map_err(exception);
    }
    // Each page's absolute address, fragment length and effective address, worked out
    // once (the passes of `fetch_fragments` go over them up to three times).
    let mut pages = [(AbsoluteAddress(0), 0usize, 0u64); MAX_PAGES];
    let (mut ga, mut done) = (ga, 0usize);
    for (slot, &gpa) in pages.iter_mut().zip(gpas) {
        let frag = (PAGE_SIZE - gpa.page_offset()).min((len - done) as u64) as usize;
        *slot = (gpa, frag, ga);
        done += frag;
        ga = effective_address(vcpu, ga.wrapping_add(frag as u64)).0;
    }
    let pages = &pages[..gpas.len().min(MAX_PAGES)];
    fetch_fragments(vm, || pages.iter().copied(), buf, permit).map_err(exception)
}

/// Fetch fragments (absolute address, length, the tag `permit` and errors carry: the
/// effective address) into consecutive parts of `buf`, each if `permit` allows its
/// frame's key, and leave `buf` unchanged if one fails: PGM 5 outside memory, PGM 4
/// refused, with that fragment's tag.
///
/// The kernel moves fragment after fragment into a scratch buffer, each with its key
/// check, and stops at the first failure: the fragments before it were fetched (they
/// get R, §10.3) but the buffer never reaches the user (§3.6, §6.1). So here every
/// verdict is taken first, with no side effect; on a failure only the R bits of the
/// earlier fragments are set; otherwise the fragments are moved straight into `buf`.
/// A single fragment needs no first pass: its move checks before it copies. With
/// several, a key changed by another thread after its verdict counts as changed after
/// this fetch.
fn fetch_fragments<I>(
    vm: &Vm,
    frags: impl Fn() -> I,
    buf: &mut [u8],
    permit: impl Fn(StorageKey, u64, usize) -> bool,
) -> Result<(), (u64, Pgm)>
where
    I: Iterator<Item = (AbsoluteAddress, usize, u64)>,
{
    let s = vm.storage();
    let code = |e| match e {
        FrameAccessError::NotInMemory => Pgm::ADDRESSING,
        FrameAccessError::Refused => Pgm::PROTECTION,
    };
    let Some((gpa, frag, tag)) = frags().next() else {
        return Ok(());
    };
    if frag == buf.len() {
        // One fragment.
        return s
            .fetch_frame(gpa, buf, |sk| permit(sk, tag, frag))
            .map_err(|e| (tag, code(e)));
    }
    for (idx, (gpa, frag, tag)) in frags().enumerate() {
        let verdict = match s.key(gpa) {
            Err(_) => Some(Pgm::ADDRESSING),
            Ok(sk) if !permit(sk, tag, frag) => Some(Pgm::PROTECTION),
            Ok(_) => None,
        };
        if let Some(c) = verdict {
            for (gpa, _, _) in frags().take(idx) {
                s.mark(gpa, StorageKey::REFERENCE);
            }
            return Err((tag, c));
        }
    }
    let mut done = 0;
    for (gpa, frag, tag) in frags() {
        s.fetch_frame(gpa, &mut buf[done..done + frag], |_| true)
            .map_err(|e| (tag, code(e)))?;
        done += frag;
    }
    Ok(())
}

/// One page of the data phase: the FPO path without a key, the keyed access, and the
/// key-9 retry under SPO (§5.8). The three give the vCPU key rule's verdict (§8.3).
/// Outside memory is PGM 5 whatever the key (the fault-in comes first); a refused
/// frame keeps its R and C (§13.1 Q4).
#[allow(clippy::too_many_arguments)]
#[inline]
fn move_page_with_key(
    vm: &Vm,
    overrides: &Overrides,
    gpa: AbsoluteAddress,
    ga: u64,
    buf: &mut Buffer<'_>,
    done: usize,
    frag: usize,
    key: AccessKey,
) -> Result<(), Pgm> {
    let mode = buf.mode();
    let permit = |sk: StorageKey| overrides.permits(key, sk, mode, ga, frag as u64);
    move_fragment_with(vm, gpa, buf, done, frag, permit)
}

/// Move one fragment (within one frame) if `permit` allows the frame's key; R, or R
/// and C, set on success (§10.3).
#[inline(always)]
fn move_fragment_with(
    vm: &Vm,
    gpa: AbsoluteAddress,
    buf: &mut Buffer<'_>,
    done: usize,
    len: usize,
    permit: impl FnOnce(StorageKey) -> bool,
) -> Result<(), Pgm> {
    let s = vm.storage();
    let r = match buf {
        Buffer::Fetch(b) => s.fetch_frame(gpa, &mut b[done..done + len], permit),
        Buffer::Store(b) => s.store_frame(gpa, &b[done..done + len], permit),
    };
    r.map_err(|e| match e {
        FrameAccessError::NotInMemory => Pgm::ADDRESSING,
        FrameAccessError::Refused => Pgm::PROTECTION,
    })
}

/// `check_gva_range` (§5.9): the CHECK_ONLY logical access. Per fragment: LAP,
/// translation and the key check with the overrides; nothing is moved, only reference
/// bits of tables read are set. Note the ASCE is selected with the raw `gaddr`
/// (§5.10 item 3).
pub fn check_logical(
    vm: &Vm,
    vcpu: &Vcpu,
    gaddr: u64,
    ar: u8,
    len: u64,
    mode: AccessMode,
    key: AccessKey,
) -> Result<(), AccessError> {
    let asce = select_asce(vm, vcpu, gaddr, ar, mode, &mut ArtTrace::default())?;
    range_to_gpas(vm, vcpu, gaddr, ar, len, asce, mode, key, |_| {})
}

/// `access_guest_abs_with_key` (§6.1): per 4 KiB fragment, fault-in (PGM 5 outside
/// memory), the basic key rule (PGM 4), the move. No pre-check: earlier fragments stay
/// moved when a later one fails (a store); a fetch leaves its buffer unchanged on
/// failure, as the ioctl leaves the user's (R is set on the earlier fragments).
/// Addresses wrap at 2^64.
pub fn access_absolute(vm: &Vm, gpa: u64, mut buf: Buffer<'_>, key: AccessKey) -> Result<(), Pgm> {
    let mode = buf.mode();
    let len = buf.len();
    if let Buffer::Fetch(b) = &mut buf {
        // Unchanged `b` on failure; the fragment's address is its own tag.
        let frags = || absolute_fragments(gpa, len as u64).map(|(a, frag)| (a, frag as usize, a.0));
        return fetch_fragments(vm, frags, b, |sk, _, _| key.permits(sk, mode))
            .map_err(|(_, code)| code);
    }
    let mut done = 0usize;
    for (a, frag) in absolute_fragments(gpa, len as u64) {
        let frag = frag as usize;
        move_fragment_with(vm, a, &mut buf, done, frag, |sk| key.permits(sk, mode))?;
        done += frag;
    }
    Ok(())
}

/// The fragments of `len` bytes from absolute `gpa`, each within one 4 KiB frame
/// (§6.1): address and length, addresses wrapping at 2^64.
fn absolute_fragments(gpa: u64, len: u64) -> impl Iterator<Item = (AbsoluteAddress, u64)> {
    let (mut gpa, mut left) = (gpa, len);
    core::iter::from_fn(move || {
        (left > 0).then(|| {
            let frag = (PAGE_SIZE - (gpa & 0xFFF)).min(left);
            let this = AbsoluteAddress(gpa);
            left -= frag;
            gpa = gpa.wrapping_add(frag);
            (this, frag)
        })
    })
}

/// `check_gpa_range` (§6.2, newest kernel): per fragment, the key lookup (PGM 5
/// outside memory, even for key 0), then the basic key rule (PGM 4).
pub fn check_absolute(
    vm: &Vm,
    gpa: u64,
    len: u64,
    mode: AccessMode,
    key: AccessKey,
) -> Result<(), Pgm> {
    for (a, _) in absolute_fragments(gpa, len) {
        let sk = vm.storage_key(a).map_err(|_| Pgm::ADDRESSING)?;
        if !key.permits(sk, mode) {
            return Err(Pgm::PROTECTION);
        }
    }
    Ok(())
}

/// The pre-rewrite CHECK_ONLY absolute check (§6.3, `linux-6.3` profile): the first
/// byte must be in memory; then per fragment key 0 passes without a memslot check,
/// other keys need memory and pass the basic rule.
pub fn check_absolute_pre_rewrite(
    vm: &Vm,
    gpa: u64,
    len: u64,
    mode: AccessMode,
    key: AccessKey,
) -> Result<(), Pgm> {
    if !vm.storage().in_memory(AbsoluteAddress(gpa)) {
        return Err(Pgm::ADDRESSING);
    }
    if key.is_zero() {
        return Ok(());
    }
    check_absolute(vm, gpa, len, mode, key)
}

/// `cmpxchg_guest_abs_with_key` (§7): compare the `old.len()` bytes at `gpa` with
/// `old` and, if equal, store `new`, with access key `key`. `old` is rewritten as the
/// kernel rewrites its copy: with the current value on an unequal compare, with zeros
/// on key protection, unchanged otherwise. Returns whether the exchange happened.
///
/// Key rule: fetch and store with the key, so key 0 or key == ACC only; a
/// store-protected operand fails even when the compare would be unequal (§13.1 Q3).
/// R is set on any permitted access, C only when the exchange happened.
pub fn cmpxchg_absolute(
    vm: &Vm,
    gpa: u64,
    old: &mut [u8],
    new: &[u8],
    key: AccessKey,
) -> Result<bool, AccessError> {
    let len = old.len();
    if len > 16 || len != new.len() {
        return Err(Errno::Einval.into());
    }
    // `IS_ALIGNED(gpa, len)`: right for powers of two only (§6.4, §7 step 1).
    if gpa & (len as u64).wrapping_sub(1) != 0 {
        return Err(Errno::Einval.into());
    }
    let a = AbsoluteAddress(gpa);
    let sk = vm
        .storage_key(a)
        .map_err(|_| AccessError::bare(Pgm::ADDRESSING))?;
    if !matches!(len, 1 | 2 | 4 | 8 | 16) {
        return Err(Errno::Einval.into());
    }
    if !(key.is_zero() || key.value() == sk.acc()) {
        // The primitive's fetch faulted: tmp = 0 is copied to `old` (§7).
        old.fill(0);
        return Err(AccessError::bare(Pgm::PROTECTION));
    }
    match vm.storage().compare_exchange(a, old, new) {
        Ok(Some(CompareExchange::Exchanged)) => {
            vm.storage()
                .mark(a, StorageKey::REFERENCE | StorageKey::CHANGE);
            Ok(true)
        }
        Ok(Some(CompareExchange::Unequal(current))) => {
            vm.storage().mark(a, StorageKey::REFERENCE);
            old.copy_from_slice(&current[..len]);
            Ok(false)
        }
        // Size and alignment were checked above, and the frame is in memory.
        Ok(None) => Err(Errno::Einval.into()),
        Err(_) => Err(AccessError::bare(Pgm::ADDRESSING)),
    }
}
