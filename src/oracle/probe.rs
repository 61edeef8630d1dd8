//! Outcomes of one access, and "what if" runs of the model.
//!
//! [`Outcome`] is what both sides report for an access: the interruption code, the
//! TEID and exception access id if stored, and the data of a completed fetch.
//!
//! [`probe`] recomputes the outcome of a logical access the way `access_guest_with_key`
//! decides it (§5.4, §5.8: translate every fragment with LAP, then the key check page
//! by page), built from the library's pieces, with switches that turn off one rule at
//! a time: key-controlled protection, EDAT-1/EDAT-2, LAP before translation. With all
//! switches at their defaults it must agree with the memop model (the driver checks
//! this for every access); with a switch off it predicts what a CPU without that rule
//! would do, which is how known departures of an emulator are recognised.
#![forbid(unsafe_code)]

use super::emulator::RawResult;
use crate::addr::{AbsoluteAddress, RealAddress};
use crate::dat::art::ArtTrace;
use crate::dat::walk;
use crate::dat::{RegionTableEntry, TableLevel};
use crate::exception::{
    AccessError, AccessMode, PgmInfo, ProgramInterruption, ProgramInterruptionCode as Pgm,
    ProtectionType,
};
use crate::keys::AccessKey;
use crate::protection::{Overrides, is_low_address, low_address_protection_enabled};
use crate::translate::{effective_address, exception_context, select_asce, walk_context};
use crate::vcpu::Vcpu;
use crate::vm::Vm;

/// The result of one access, as the model or an emulator reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Outcome {
    /// Program-interruption code; 0 when the access completed.
    pub code: u16,
    /// The TEID, if stored (model: if `trans_exc` records one for the code).
    pub teid: Option<u64>,
    /// The exception access id, if stored.
    pub eaid: Option<u8>,
    /// The data of a completed fetch, right-aligned.
    pub data: Option<u64>,
}

impl Outcome {
    /// A completed access.
    pub fn ok(data: Option<u64>) -> Self {
        Self {
            code: 0,
            teid: None,
            eaid: None,
            data,
        }
    }

    /// The model's outcome from a program-interruption record: the TEID and access id
    /// count as stored where `trans_exc` records them (§9.3).
    pub fn from_pgm(info: &PgmInfo) -> Self {
        let code = Pgm(info.code);
        Self {
            code: info.code,
            teid: code.records_teid_address().then_some(info.teid.0),
            eaid: code.records_access_id().then_some(info.exc_access_id),
            data: None,
        }
    }

    /// An emulator's outcome from the guest's line.
    pub fn from_raw(r: &RawResult, store: bool, size: u8) -> Self {
        if r.status == 0 {
            let mask = if size >= 8 {
                u64::MAX
            } else {
                (1u64 << (8 * size)) - 1
            };
            return Self::ok((!store).then_some(r.r0 & mask));
        }
        Self {
            code: (r.pic & 0xffff) as u16,
            teid: (r.teid != RawResult::NO_TEID).then_some(r.teid),
            eaid: (r.eaid != RawResult::NO_EAID).then_some(r.eaid),
            data: None,
        }
    }

    /// Short human form: `ok 0x1234`, `ok`, `PGM 0x11 teid=… eaid=…`.
    pub fn describe(&self) -> String {
        if self.code == 0 {
            return match self.data {
                Some(d) => format!("ok {d:#x}"),
                None => "ok".into(),
            };
        }
        let mut s = format!("PGM {:#04x}", self.code);
        match self.teid {
            Some(t) => s += &format!(" teid={t:016x}"),
            None => s += " teid=-",
        }
        match self.eaid {
            Some(e) => s += &format!(" eaid={e}"),
            None => s += " eaid=-",
        }
        s
    }
}

/// Which rules [`probe`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Key-controlled protection (with FPO and SPO).
    pub keys: bool,
    /// EDAT-1 may apply (still needs CR0.40 and facility 8).
    pub edat1: bool,
    /// EDAT-2 may apply.
    pub edat2: bool,
    /// LAP is tested before translation (the kernel, §11 item 7); false: after a
    /// successful translation, as the PoP orders it.
    pub lap_first: bool,
    /// Region-table P bits protect even when EDAT-1 does not apply (the kernel: only
    /// with EDAT-1, §11 item 5).
    pub region_p_always: bool,
}

impl Rules {
    /// The kernel's rules.
    pub const KERNEL: Rules = Rules {
        keys: true,
        edat1: true,
        edat2: true,
        lap_first: true,
        region_p_always: false,
    };
}

/// A probe's result: the outcome, and where the first byte went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The outcome (data read from storage as it is now).
    pub outcome: Outcome,
    /// Absolute address of the first fragment, if translation succeeded.
    pub target: Option<u64>,
    /// Absolute address of the second fragment of a page-crossing access.
    pub target2: Option<u64>,
    /// The access failed with an errno (not an architected outcome).
    pub errno: bool,
    /// Frames of the DAT-table entries and access-register-translation structures
    /// read (first `n_tables`).
    pub tables: [u64; 10],
    /// Number of valid entries in `tables`.
    pub n_tables: u8,
}

impl Probe {
    fn exc(p: ProgramInterruption, target: Option<u64>) -> Self {
        Self {
            outcome: Outcome::from_pgm(&p.info),
            target,
            target2: None,
            errno: false,
            tables: [0; 10],
            n_tables: 0,
        }
    }

    /// The frames of the table entries read.
    pub fn table_frames(&self) -> &[u64] {
        &self.tables[..usize::from(self.n_tables)]
    }
}

/// Decide a logical access of `size` bytes at `gaddr` through access register `ar`
/// with access key `key` under `rules`, without changing storage (reference bits of
/// the tables read are set, as translation does).
#[allow(clippy::too_many_arguments)]
pub fn probe(
    vm: &Vm,
    vcpu: &Vcpu,
    gaddr: u64,
    ar: u8,
    size: u8,
    store: bool,
    key: u8,
    rules: Rules,
) -> Probe {
    let errno = Probe {
        errno: true,
        ..Probe::exc(ProgramInterruption::bare(Pgm(0)), None)
    };
    let Some(key) = AccessKey::new(key) else {
        return errno;
    };
    let mode = if store {
        AccessMode::Store
    } else {
        AccessMode::Fetch
    };
    let ga = effective_address(vcpu, gaddr).0;
    // Frames of the tables and AR-translation structures read.
    let mut tables = [0u64; 10];
    let mut n_tables = 0u8;
    let note = |tables: &mut [u64; 10], n: &mut u8, a: u64| {
        let f = a & !0xfff;
        if usize::from(*n) < tables.len() && !tables[..usize::from(*n)].contains(&f) {
            tables[usize::from(*n)] = f;
            *n += 1;
        }
    };
    let with_tables = |p: Probe, tables: &[u64; 10], n: u8| Probe {
        tables: *tables,
        n_tables: n,
        ..p
    };
    let mut art = ArtTrace::default();
    let selected = select_asce(vm, vcpu, ga, ar, mode, &mut art);
    for a in art.addresses() {
        note(&mut tables, &mut n_tables, a.0);
    }
    let asce = match selected {
        Ok(a) => a,
        Err(AccessError::Program(p)) => {
            return with_tables(Probe::exc(p, None), &tables, n_tables);
        }
        Err(AccessError::Errno(_)) => return errno,
    };
    let lap = low_address_protection_enabled(vcpu, asce.private());
    let exc = |code: Pgm, at: u64, prot, terminate| {
        ProgramInterruption::new(
            code,
            &exception_context(vcpu, at, ar, mode),
            prot,
            terminate,
        )
    };
    // Phase 1: translate every fragment.
    let mut frags: Vec<(u64, u64, u64)> = Vec::with_capacity(2);
    let mut cur = ga;
    let mut left = u64::from(size);
    let mut offset = ga & 0xfff;
    while left > 0 {
        let frag = (4096 - offset).min(left);
        let eff = effective_address(vcpu, cur).0;
        let low = store && lap && is_low_address(eff);
        if low && rules.lap_first {
            return Probe::exc(
                exc(Pgm::PROTECTION, eff, ProtectionType::LowAddress, false),
                None,
            );
        }
        let gpa = if vcpu.psw.dat() {
            let ctx = walk_context(vm, vcpu, asce, mode);
            let edat1 = ctx.edat1() && rules.edat1;
            let ctx = ctx.with_edat(edat1, ctx.edat2() && rules.edat2 && edat1);
            let out = walk::walk(vm.storage(), eff, &ctx);
            for e in out.trace.entries() {
                note(&mut tables, &mut n_tables, e.address.0);
            }
            let region_p = rules.region_p_always
                && store
                && !ctx.edat1()
                && out.trace.entries().iter().any(|e| {
                    matches!(
                        e.level,
                        Some(
                            TableLevel::RegionFirst
                                | TableLevel::RegionSecond
                                | TableLevel::RegionThird
                        )
                    ) && e.value & RegionTableEntry::P != 0
                });
            match out.result {
                Ok(_) if region_p => {
                    let p = Probe::exc(exc(Pgm::PROTECTION, eff, ProtectionType::Dat, false), None);
                    return with_tables(p, &tables, n_tables);
                }
                Ok(t) => t.address.0,
                Err(e) => {
                    let p = Probe::exc(exc(e.code, eff, e.prot, false), None);
                    return with_tables(p, &tables, n_tables);
                }
            }
        } else {
            let a = vcpu.real_to_absolute(RealAddress(eff));
            if !vm.storage().in_memory(a) {
                return Probe::exc(
                    exc(Pgm::ADDRESSING, eff, ProtectionType::Dummy, false),
                    None,
                );
            }
            a.0
        };
        if low {
            let p = Probe::exc(
                exc(Pgm::PROTECTION, eff, ProtectionType::LowAddress, false),
                Some(gpa),
            );
            return with_tables(p, &tables, n_tables);
        }
        frags.push((gpa, eff, frag));
        offset = 0;
        cur = eff.wrapping_add(frag);
        left -= frag;
    }
    let target = frags.first().map(|f| f.0);
    let target2 = frags.get(1).map(|f| f.0);
    // Phase 2: keys, page by page.
    let overrides = Overrides::for_access(vcpu, mode, asce.private());
    let mut bytes = Vec::with_capacity(size as usize);
    for (idx, &(gpa, eff, frag)) in frags.iter().enumerate() {
        let a = AbsoluteAddress(gpa);
        let Ok(sk) = vm.storage_key(a) else {
            return Probe::exc(
                exc(Pgm::ADDRESSING, eff, ProtectionType::Dummy, false),
                target,
            );
        };
        if rules.keys && !overrides.permits(key, sk, mode, eff, frag) {
            let terminate = store && idx > 0;
            let p = exc(
                Pgm::PROTECTION,
                eff,
                ProtectionType::KeyControlled,
                terminate,
            );
            return Probe {
                target2,
                ..Probe::exc(p, target)
            };
        }
        let mut b = vec![0u8; frag as usize];
        let _ = vm.storage().read(a, &mut b);
        bytes.extend_from_slice(&b);
    }
    let data = (!store).then(|| bytes.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)));
    Probe {
        outcome: Outcome::ok(data),
        target,
        target2,
        errno: false,
        tables,
        n_tables,
    }
}
