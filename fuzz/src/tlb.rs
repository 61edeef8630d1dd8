//! Target `tlb`: the public translation paths against an uncached composition of the
//! pure pieces, over a sequence of translations interleaved with edits of table
//! memory (direct stores, absolute memops, logical memops through DAT), register
//! changes and key changes.
//!
//! KVM has no TLB (§5.6 notes, §11 item 2): every access re-walks the tables as they are
//! in memory at that moment, and every walk sets the reference bits of the table and
//! ART frames it reads (§10.3). Whatever cache the engine keeps must therefore be
//! invisible. The reference here recomputes every translation from scratch with
//! `dat::walk::walk` and `dat::art::ar_translation` (both pure functions of storage),
//! with its own effective-address, ASCE-selection, LAP and key logic (§5.1, §5.2, §8),
//! and sets the reference bits itself; the public paths are
//! `translate::translate_address_with_key`, `translate::translate`,
//! `access::check_logical`, a one-byte CHECK_ONLY `KVM_S390_MEM_OP`, and the
//! translation cache itself (`tlb::TranslationCache::translate` against
//! `dat::walk::walk` for the same `WalkContext`). Three vCPUs share the guest: two
//! with their translation cache on, one with it off; every query goes to one of them.
//! After each query the result, the pgm record and the storage keys (R bits) must
//! agree with the uncached reference.

use super::guest::{self, FuzzGuest};
use super::input::Input;
use s390_gaccess::access::check_logical;
use s390_gaccess::addr::{AbsoluteAddress, EffectiveAddress};
use s390_gaccess::dat::art::{ArtTrace, ar_translation};
use s390_gaccess::dat::builder::entry_address;
use s390_gaccess::dat::walk::{DatException, WalkContext, walk};
use s390_gaccess::dat::{Asce, TableLevel};
use s390_gaccess::exception::{
    AccessError, AccessMode, ExceptionContext, PgmInfo, ProgramInterruption,
    ProgramInterruptionCode as Pgm, ProtectionType,
};
use s390_gaccess::keys::{AccessKey, StorageKey};
use s390_gaccess::memop::abi::{
    KVM_S390_KEYOP_RRBE, KVM_S390_KEYOP_SSKE, KVM_S390_MEMOP_F_CHECK_ONLY,
    KVM_S390_MEMOP_F_SKEY_PROTECTION, KvmS390Keyop, KvmS390MemOp,
};
use s390_gaccess::memop::{MemOp, Profile, UserMemory, keyop, vcpu_mem_op};
use s390_gaccess::translate::{translate, translate_address_with_key};
use s390_gaccess::vcpu::{Psw, Vcpu, cr0};
use s390_gaccess::vm::{Facilities, Vm};

/// The outcome of one translation query: the absolute address, or the ioctl-style
/// return value with the program-interruption record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Translated.
    Abs(u64),
    /// A program interruption.
    Pgm(PgmInfo),
    /// A negative errno.
    Errno(i32),
    /// A failed walk (direct cache queries).
    Walk(DatException),
}

fn from_error(e: AccessError) -> Outcome {
    match e {
        AccessError::Program(p) => Outcome::Pgm(p.info),
        AccessError::Errno(e) => Outcome::Errno(e.ret()),
    }
}

/// §5.1.
fn effective(vcpu: &Vcpu, ga: u64) -> u64 {
    match (vcpu.psw.mask & Psw::EA != 0, vcpu.psw.mask & Psw::BA != 0) {
        (true, true) => ga,
        (false, true) => ga & 0x7FFF_FFFF,
        _ => ga & 0xFF_FFFF,
    }
}

/// §5.7.
fn real_to_abs(vcpu: &Vcpu, r: u64) -> u64 {
    let p = (vcpu.prefix & 0x7FFF_E000) as u64;
    if r < 0x2000 {
        r + p
    } else if r >= p && r < p + 0x2000 {
        r - p
    } else {
        r
    }
}

fn record(
    code: Pgm,
    ga: u64,
    ar: u8,
    mode: AccessMode,
    vcpu: &Vcpu,
    prot: ProtectionType,
) -> Outcome {
    let ctx = ExceptionContext {
        address: EffectiveAddress(ga),
        ar,
        mode,
        psw_as: vcpu.psw.as_bits(),
    };
    Outcome::Pgm(ProgramInterruption::new(code, &ctx, prot, false).info)
}

/// One byte's translation as `guest_translate_address_with_key` does it (§16 step 3),
/// from scratch: effective address, ASCE selection with AR translation, LAP, the DAT
/// walk or prefixing, the key check with FPO and SPO. `asce_ga` is the address used for
/// an ALC TEID (the raw address for CHECK_ONLY, §5.9). Sets the reference bits of
/// everything read.
pub fn reference(
    vm: &Vm,
    vcpu: &Vcpu,
    gaddr: u64,
    asce_ga: u64,
    ar: u8,
    mode: AccessMode,
    key: u8,
) -> Outcome {
    let ga = effective(vcpu, gaddr);
    let dat = vcpu.psw.dat();
    let store = mode == AccessMode::Store;
    let asce = if !dat {
        Asce::REAL_SPACE
    } else {
        match vcpu.psw.as_bits() {
            0 => Asce(vcpu.cr[1]),
            2 => Asce(vcpu.cr[7]),
            3 => Asce(vcpu.cr[13]),
            _ => {
                if ar >= 16 {
                    return Outcome::Errno(-22);
                }
                let mut art = ArtTrace::default();
                let r = ar_translation(vm.storage(), vcpu, ar, mode, &mut art);
                for a in art.addresses() {
                    vm.storage().mark(a, StorageKey::REFERENCE);
                }
                match r {
                    Ok(a) => a,
                    Err(code) => {
                        return record(
                            code,
                            asce_ga,
                            ar,
                            mode,
                            vcpu,
                            ProtectionType::AccessListControlled,
                        );
                    }
                }
            }
        }
    };
    let private = dat && asce.private();
    if store && vcpu.cr[0] & cr0::LOW_ADDRESS_PROTECTION != 0 && !private && ga & !0x11FF == 0 {
        return record(
            Pgm::PROTECTION,
            ga,
            ar,
            mode,
            vcpu,
            ProtectionType::LowAddress,
        );
    }
    let abs = if dat {
        let f = vm.facilities();
        let edat1 = vcpu.cr[0] & cr0::EDAT != 0 && f.has(Facilities::EDAT1);
        let ctx = WalkContext::new(asce, mode)
            .with_edat(edat1, edat1 && f.has(Facilities::EDAT2))
            .with_iep(vcpu.cr[0] & cr0::IEP != 0 && f.has(Facilities::IEP))
            .with_prefix((vcpu.prefix & 0x7FFF_E000) as u64);
        let out = walk(vm.storage(), ga, &ctx);
        for e in out.trace.entries() {
            vm.storage().mark(e.address, StorageKey::REFERENCE);
        }
        match out.result {
            Ok(t) => t.address.0,
            Err(e) => return record(e.code, ga, ar, mode, vcpu, e.prot),
        }
    } else {
        let abs = real_to_abs(vcpu, ga);
        if !vm.storage().in_memory(AbsoluteAddress(abs)) {
            return record(Pgm::ADDRESSING, ga, ar, mode, vcpu, ProtectionType::Dummy);
        }
        abs
    };
    if key != 0 {
        let Ok(sk) = vm.storage_key(AbsoluteAddress(abs)) else {
            return record(
                Pgm::ADDRESSING,
                ga,
                ar,
                mode,
                vcpu,
                ProtectionType::KeyControlled,
            );
        };
        let fpo = !store && vcpu.cr[0] & cr0::FETCH_PROTECTION_OVERRIDE != 0 && !private;
        let spo = vcpu.cr[0] & cr0::STORAGE_PROTECTION_OVERRIDE != 0;
        let ok = key == sk.acc()
            || (!store && (!sk.fetch_protected() || (fpo && ga < 2048)))
            || (spo && sk.acc() == 9);
        if !ok {
            return record(
                Pgm::PROTECTION,
                ga,
                ar,
                mode,
                vcpu,
                ProtectionType::KeyControlled,
            );
        }
    }
    Outcome::Abs(abs)
}

/// The public path to query.
#[derive(Clone, Copy, Debug)]
enum Path {
    TranslateWithKey,
    Report,
    CheckLogical,
    MemopCheckOnly,
    CacheDirect,
}

#[derive(Clone, Copy, Debug)]
struct Query {
    path: Path,
    /// Which vCPU: 0 and 1 cache, 2 does not.
    cpu: usize,
    gaddr: u64,
    ar: u8,
    mode: AccessMode,
    key: u8,
}

/// Run the query through its public path; the outcome comparable with the reference
/// (`check_logical` and the memop report no address: their success is `Abs(u64::MAX)`).
fn public(vm: &Vm, vcpu: &mut Vcpu, q: &Query) -> Outcome {
    let key = AccessKey::new(q.key).unwrap_or(AccessKey::ZERO);
    match q.path {
        Path::CacheDirect => {
            match vcpu
                .tlb
                .translate(vm.storage(), q.gaddr, &direct_context(vm, vcpu, q))
            {
                Ok(t) => Outcome::Abs(t.address.0),
                Err(e) => Outcome::Walk(e),
            }
        }
        Path::TranslateWithKey => {
            match translate_address_with_key(vm, vcpu, q.gaddr, q.ar, q.mode, key) {
                Ok(a) => Outcome::Abs(a.0),
                Err(e) => from_error(e),
            }
        }
        Path::Report => match translate(vm, vcpu, q.gaddr, q.ar, q.mode, key).result {
            Ok((a, _)) => Outcome::Abs(a.0),
            Err(e) => from_error(e),
        },
        Path::CheckLogical => match check_logical(vm, vcpu, q.gaddr, q.ar, 1, q.mode, key) {
            Ok(()) => Outcome::Abs(u64::MAX),
            Err(e) => from_error(e),
        },
        Path::MemopCheckOnly => {
            let op = if q.mode == AccessMode::Store { 1 } else { 0 };
            let mut mop = KvmS390MemOp::new(op, q.gaddr, 1);
            mop.set_flags(KVM_S390_MEMOP_F_CHECK_ONLY | KVM_S390_MEMOP_F_SKEY_PROTECTION);
            mop.set_key(q.key);
            mop.set_ar(q.ar);
            let ret = vcpu_mem_op(vm, vcpu, Profile::Linux70, &mop, &mut UserMemory::null());
            match ret {
                0 => Outcome::Abs(u64::MAX),
                r if r > 0 => Outcome::Pgm(vcpu.pgm),
                r => Outcome::Errno(r),
            }
        }
    }
}

/// Every frame's key byte, in address order.
fn keys(g: &FuzzGuest) -> Vec<(u64, u8)> {
    let mut out = Vec::new();
    for &(start, size) in &g.slots {
        for f in 0..size / 4096 {
            let a = start + f * 4096;
            out.push((a, g.vm.storage_key(AbsoluteAddress(a)).map_or(0, |k| k.0)));
        }
    }
    out
}

fn restore_keys(vm: &Vm, to: &[(u64, u8)], now: &[(u64, u8)]) {
    for (&(a, k), &(_, n)) in to.iter().zip(now) {
        if k != n {
            let _ = vm.set_storage_key(AbsoluteAddress(a), StorageKey(k));
        }
    }
}

/// The walk context of a direct cache query: the vCPU's CR1 (or the space the query
/// names), its facilities-and-CR0 EDAT/IEP and prefix.
fn direct_context(vm: &Vm, vcpu: &Vcpu, q: &Query) -> WalkContext {
    let f = vm.facilities();
    let edat1 = vcpu.cr[0] & cr0::EDAT != 0 && f.has(Facilities::EDAT1);
    WalkContext::new(Asce(vcpu.cr[1]), q.mode)
        .with_edat(edat1, edat1 && f.has(Facilities::EDAT2))
        .with_iep(vcpu.cr[0] & cr0::IEP != 0 && f.has(Facilities::IEP))
        .with_prefix((vcpu.prefix & 0x7FFF_E000) as u64)
}

/// The uncached walk for a direct cache query, setting R on what it read.
fn direct_reference(vm: &Vm, vcpu: &Vcpu, q: &Query) -> Outcome {
    let out = walk(vm.storage(), q.gaddr, &direct_context(vm, vcpu, q));
    for e in out.trace.entries() {
        vm.storage().mark(e.address, StorageKey::REFERENCE);
    }
    match out.result {
        Ok(t) => Outcome::Abs(t.address.0),
        Err(e) => Outcome::Walk(e),
    }
}

fn query(g: &FuzzGuest, cpus: &mut [Vcpu; 3], q: &Query) {
    let vcpu = &mut cpus[q.cpu];
    let k0 = keys(g);
    let got = public(&g.vm, vcpu, q);
    let k1 = keys(g);
    restore_keys(&g.vm, &k0, &k1);
    let checked = matches!(q.path, Path::CheckLogical | Path::MemopCheckOnly);
    let asce_ga = if checked {
        q.gaddr
    } else {
        effective(vcpu, q.gaddr)
    };
    let mut want = if let Path::CacheDirect = q.path {
        direct_reference(&g.vm, vcpu, q)
    } else {
        reference(&g.vm, vcpu, q.gaddr, asce_ga, q.ar, q.mode, q.key)
    };
    if checked && let Outcome::Abs(_) = want {
        want = Outcome::Abs(u64::MAX);
    }
    if let Path::MemopCheckOnly = q.path
        && q.ar >= 16
    {
        want = Outcome::Errno(-22);
    }
    let k2 = keys(g);
    assert_eq!(
        got, want,
        "{q:?} psw={:#x} cr0={:#x} cr1={:#x} prefix={:#x}",
        vcpu.psw.mask, vcpu.cr[0], vcpu.cr[1], vcpu.prefix
    );
    let diff: Vec<_> = k1
        .iter()
        .zip(&k2)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| (a.0, a.1, b.1))
        .collect();
    assert!(
        diff.is_empty(),
        "{q:?}: reference bits differ from an uncached walk (frame, public, reference): {diff:x?}"
    );
}

fn pick_mode(inp: &mut Input<'_>) -> AccessMode {
    if inp.bool() {
        AccessMode::Store
    } else {
        AccessMode::Fetch
    }
}

/// An entry address of a mapped virtual address at some level, or any address.
fn pick_entry(g: &FuzzGuest, inp: &mut Input<'_>) -> u64 {
    if !g.asces.is_empty() && inp.below(4) != 0 {
        let asce = g.asces[inp.below(g.asces.len() as u64) as usize];
        let level = TableLevel::ALL[inp.below(5) as usize];
        let virt = g.pick_virt(inp);
        if let Ok(a) = entry_address(g.vm.storage(), asce, virt, level) {
            return a.0;
        }
    }
    g.pick_abs(inp) & !7
}

fn new_entry(g: &FuzzGuest, inp: &mut Input<'_>, at: u64) -> u64 {
    let old = g.vm.storage().read_u64(AbsoluteAddress(at)).unwrap_or(0);
    match inp.below(5) {
        0 => inp.u64(),
        1 => old ^ (1u64 << inp.below(64)),
        2 => (old & 0xFFF) | (g.pick_frame(inp) & !0xFFF),
        3 => old ^ 0x400, // PTE I / region FC
        _ => old ^ 0x20,  // region/segment I
    }
}

/// Run one input: build a guest, then up to 64 operations.
pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let Some(g) = guest::build(&mut inp) else {
        return;
    };
    let mut a = g.vcpu.clone();
    a.tlb.set_enabled(true);
    let b = a.clone();
    let mut c = a.clone();
    c.tlb.set_enabled(false);
    let mut cpus = [a, b, c];
    let mut last: Option<Query> = None;
    for _ in 0..64 {
        if inp.is_empty() {
            break;
        }
        match inp.below(12) {
            0..=3 => {
                let path = match inp.below(5) {
                    0 => Path::TranslateWithKey,
                    1 => Path::Report,
                    2 => Path::CheckLogical,
                    3 => Path::MemopCheckOnly,
                    _ => Path::CacheDirect,
                };
                let q = Query {
                    path,
                    cpu: inp.below(3) as usize,
                    gaddr: g.pick_gaddr(&mut inp),
                    ar: inp.below(16) as u8,
                    mode: pick_mode(&mut inp),
                    key: if inp.bool() { inp.below(16) as u8 } else { 0 },
                };
                query(&g, &mut cpus, &q);
                last = Some(q);
            }
            4 | 5 => {
                // Repeat the last query (a cache hit, if nothing changed), maybe on
                // another vCPU, by another path or in the other mode.
                if let Some(mut q) = last {
                    match inp.below(4) {
                        0 => q.cpu = inp.below(3) as usize,
                        1 => q.path = Path::CacheDirect,
                        2 => q.mode = pick_mode(&mut inp),
                        _ => {}
                    }
                    query(&g, &mut cpus, &q);
                }
            }
            6 => {
                // A direct store or compare-and-swap to table memory.
                let at = pick_entry(&g, &mut inp);
                let v = new_entry(&g, &mut inp, at);
                let st = g.vm.storage();
                match inp.below(3) {
                    0 => {
                        let _ = st.write_u64(AbsoluteAddress(at), v);
                    }
                    1 => {
                        let _ = st.write(AbsoluteAddress(at + inp.below(8)), &[v as u8]);
                    }
                    _ => {
                        let old = st.read_u64(AbsoluteAddress(at)).unwrap_or(0);
                        let _ = st.compare_exchange(
                            AbsoluteAddress(at),
                            &old.to_be_bytes(),
                            &v.to_be_bytes(),
                        );
                    }
                }
            }
            7 => {
                // Table memory changed through a memop: absolute write or cmpxchg, or a
                // logical write through DAT (which may hit a table page mapped into
                // the space).
                let at = pick_entry(&g, &mut inp);
                let v = new_entry(&g, &mut inp, at);
                let cpu = inp.below(3) as usize;
                match inp.below(3) {
                    0 => {
                        let _ = MemOp::absolute_write(at, v.to_be_bytes().to_vec()).run_vm(&g.vm);
                    }
                    1 => {
                        let old = g.vm.storage().read_u64(AbsoluteAddress(at)).unwrap_or(0);
                        let _ = MemOp::absolute_cmpxchg(at, v.to_be_bytes(), old.to_be_bytes())
                            .run_vm(&g.vm);
                    }
                    _ => {
                        let ga = g.pick_gaddr(&mut inp) & !7;
                        let _ = MemOp::logical_write(ga, v.to_be_bytes().to_vec())
                            .run_vcpu(&g.vm, &mut cpus[cpu]);
                    }
                }
            }
            8 => {
                // Registers of one vCPU.
                let v = &mut cpus[inp.below(3) as usize];
                match inp.below(7) {
                    0 => v.psw.mask ^= Psw::DAT,
                    1 => {
                        v.psw.mask = (v.psw.mask & !Psw::AS_MASK) | (inp.below(4) << Psw::AS_SHIFT)
                    }
                    2 => {
                        v.cr[0] ^= [
                            cr0::LOW_ADDRESS_PROTECTION,
                            cr0::FETCH_PROTECTION_OVERRIDE,
                            cr0::STORAGE_PROTECTION_OVERRIDE,
                            cr0::EDAT,
                            cr0::IEP,
                        ][inp.below(5) as usize]
                    }
                    3 => {
                        let cr = [1usize, 7, 13][inp.below(3) as usize];
                        v.cr[cr] = if g.asces.is_empty() || inp.below(4) == 0 {
                            v.cr[cr] ^ (1 << inp.below(12))
                        } else {
                            g.asces[inp.below(g.asces.len() as u64) as usize].0
                        };
                    }
                    4 => v.prefix = (inp.below(64) as u32) << 13,
                    5 => v.psw.mask ^= [Psw::EA, Psw::BA][inp.below(2) as usize],
                    _ => {
                        let i = inp.below(16) as usize;
                        v.ar[i] = if g.alets.is_empty() || inp.bool() {
                            inp.below(3) as u32
                        } else {
                            g.alets[inp.below(g.alets.len() as u64) as usize]
                        };
                    }
                }
            }
            9 => {
                // Keys: SET_SKEYS-like, SSKE, RRBE, or putting keys in use.
                let at = g.pick_frame(&mut inp);
                let k = inp.u8() & 0xFE;
                match inp.below(4) {
                    0 => {
                        let _ = g.vm.set_storage_key(AbsoluteAddress(at), StorageKey(k));
                    }
                    1 => {
                        let mut kop = KvmS390Keyop::new(KVM_S390_KEYOP_SSKE, at, k);
                        let _ = keyop(&g.vm, &mut kop);
                    }
                    2 => {
                        let mut kop = KvmS390Keyop::new(KVM_S390_KEYOP_RRBE, at, 0);
                        let _ = keyop(&g.vm, &mut kop);
                    }
                    _ => {
                        g.vm.enable_keys();
                    }
                }
            }
            10 => {
                // Remap: point a page-table entry of a mapped page at another frame.
                if !g.asces.is_empty() {
                    let asce = g.asces[inp.below(g.asces.len() as u64) as usize];
                    let virt = g.pick_virt(&mut inp);
                    if let Ok(a) = entry_address(g.vm.storage(), asce, virt, TableLevel::Page) {
                        let old = g.vm.storage().read_u64(a).unwrap_or(0);
                        let frame = g.pick_frame(&mut inp);
                        let _ = g.vm.storage().write_u64(a, (old & 0xFFF) | frame);
                    }
                }
            }
            _ => {
                // Flush or switch a cache (never needed for correctness).
                let v = &mut cpus[inp.below(2) as usize];
                if inp.bool() {
                    v.tlb.flush();
                } else {
                    let on = !v.tlb.enabled();
                    v.tlb.set_enabled(on);
                }
            }
        }
    }
}
