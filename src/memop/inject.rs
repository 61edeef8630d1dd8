//! INJECT_EXCEPTION: queueing a program interruption (`__inject_prog`) and
//! delivering it into the guest lowcore (`__deliver_prog`), §3.11, §9.5.
//!
//! # Lowcore outside memory
//!
//! The lowcore stores of a delivery go to absolute `prefix + offset`. When that frame
//! is not guest memory each store fails on its own (the kernel ORs the failures into
//! one -EFAULT, which `KVM_RUN` returns): nothing is stored, the new PSW is not loaded,
//! but the interruption is still consumed and a nullifying code still rewinds the PSW,
//! since both happen before and beside the stores. The model does the same and never
//! panics; [`deliver_program_interruption`] reports it as
//! [`Delivery::LowcoreNotInMemory`].
#![forbid(unsafe_code)]

use super::abi::{
    KVM_S390_PGM_FLAGS_ILC_MASK, KVM_S390_PGM_FLAGS_ILC_VALID, KVM_S390_PGM_FLAGS_NO_REWIND,
};
use crate::addr::AbsoluteAddress;
use crate::exception::{PgmInfo, ProgramInterruptionCode as Pgm};
use crate::keys::StorageKey;
use crate::vcpu::{Psw, SieIntercept, Vcpu};
use crate::vm::Vm;

/// SIE intercept codes whose `ipa` holds the intercepted instruction
/// (`kvm_s390_get_ilen`): INST, INSTPROGI, OPEREXC, PARTEXEC, IOINST, KSS.
pub mod icpt {
    /// Instruction intercept.
    pub const INST: u8 = 0x04;
    /// Program-interruption intercept.
    pub const PROGI: u8 = 0x08;
    /// Instruction and program-interruption intercept.
    pub const INSTPROGI: u8 = 0x0C;
    /// Operation-exception intercept.
    pub const OPEREXC: u8 = 0x2C;
    /// Partial-execution intercept.
    pub const PARTEXEC: u8 = 0x38;
    /// I/O-instruction intercept.
    pub const IOINST: u8 = 0x40;
    /// Keyless-subset (storage-key instruction) intercept.
    pub const KSS: u8 = 0x5C;
}

/// Lowcore offsets a program-interruption delivery writes or reads (§9.5).
pub mod lowcore {
    /// Program-interruption ILC (u16).
    pub const PGM_ILC: u64 = 140;
    /// Program-interruption code (u16).
    pub const PGM_CODE: u64 = 142;
    /// Exception access id (u8).
    pub const EXC_ACCESS_ID: u64 = 160;
    /// Operand access id (u8).
    pub const OP_ACCESS_ID: u64 = 162;
    /// Translation-exception identification (u64).
    pub const TRANS_EXC_CODE: u64 = 168;
    /// Breaking-event address of the program interruption (u64).
    pub const PGM_LAST_BREAK: u64 = 272;
    /// Program old PSW (16 bytes).
    pub const PGM_OLD_PSW: u64 = 336;
    /// Program new PSW (16 bytes).
    pub const PGM_NEW_PSW: u64 = 464;
}

/// `insn_length(opcode)`: 2, 4 or 6 bytes from the first opcode byte's two high bits.
pub const fn instruction_length(opcode: u8) -> u8 {
    match opcode >> 6 {
        0 => 2,
        3 => 6,
        _ => 4,
    }
}

/// `kvm_s390_get_ilen` (§9.5): the ILC of an exception recognised for the last SIE
/// intercept. Instruction-type intercepts give the length of the instruction at
/// `ipa` (or of the EXECUTE when `icptstatus` bit 0x01 says it was executed),
/// program-interruption intercepts give `pgmilc & 6`, everything else 0.
pub fn intercept_ilen(intercept: &SieIntercept) -> u8 {
    match intercept.icptcode {
        icpt::INST
        | icpt::INSTPROGI
        | icpt::OPEREXC
        | icpt::PARTEXEC
        | icpt::IOINST
        | icpt::KSS => {
            if intercept.icptstatus & 1 != 0 {
                match (intercept.icptstatus >> 4) & 6 {
                    0 => 4,
                    n => n,
                }
            } else {
                instruction_length((intercept.ipa >> 8) as u8)
            }
        }
        icpt::PROGI => intercept.pgmilc & 6,
        _ => 0,
    }
}

/// `kvm_s390_inject_prog_irq` → `__inject_prog` (§9.5): make `pgm` the vCPU's pending
/// program interruption.
///
/// * Without a valid ILC in `pgm.flags`, the ILC comes from the last intercept
///   ([`intercept_ilen`]) and is marked valid.
/// * A PER event (code 0x80) merges into a pending record (only the PER bit and the
///   flags change); a code without the PER bit keeps a pending PER bit and replaces the
///   rest; a code with the PER bit and others replaces the pending record whole.
pub fn inject_program_interruption(vcpu: &mut Vcpu, mut pgm: PgmInfo) {
    if pgm.flags & KVM_S390_PGM_FLAGS_ILC_VALID == 0 {
        pgm.flags &= !KVM_S390_PGM_FLAGS_ILC_MASK;
        pgm.flags |= intercept_ilen(&vcpu.intercept) | KVM_S390_PGM_FLAGS_ILC_VALID;
    }
    let per = Pgm::PER.0;
    let pending = vcpu.pending_pgm.unwrap_or_default();
    let merged = if pgm.code == per {
        PgmInfo {
            code: pending.code | per,
            flags: pgm.flags,
            ..pending
        }
    } else if pgm.code & per == 0 {
        PgmInfo {
            code: (pending.code & per) | pgm.code,
            ..pgm
        }
    } else {
        pgm
    };
    vcpu.pending_pgm = Some(merged);
}

/// What [`deliver_program_interruption`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// No program interruption was pending; nothing changed.
    NothingPending,
    /// The interruption was delivered: lowcore written, new PSW loaded.
    Delivered,
    /// The interruption was consumed but the lowcore frame is not guest memory: no
    /// store happened and the new PSW was not loaded (`KVM_RUN` would fail with
    /// -EFAULT). See the module documentation.
    LowcoreNotInMemory,
}

/// How `__deliver_prog` treats a code (without the PER bit): whether it nullifies, and
/// which code-specific lowcore fields it stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DeliveryClass {
    nullifying: bool,
    teid: bool,
    exc_access_id: bool,
    op_access_id: bool,
}

fn delivery_class(code: u16) -> DeliveryClass {
    let c = |nullifying, teid, exc_access_id, op_access_id| DeliveryClass {
        nullifying,
        teid,
        exc_access_id,
        op_access_id,
    };
    match code {
        // AFX, ASX, LX, EX, primary/secondary authority, LFX, LSX, LSTE sequence.
        0x20..=0x27 | 0x2E => c(true, true, false, false),
        // Space-switch event.
        0x1C => c(false, true, false, false),
        // ALEN, ALE sequence, ASTE validity/sequence, extended authority, ASTE instance.
        0x29..=0x2D | 0x2F => c(true, false, true, false),
        // ASCE type, page, region-first/second/third, segment translation.
        0x10 | 0x11 | 0x38..=0x3B => c(true, true, true, true),
        // Protection.
        0x04 => c(false, true, true, false),
        // Stack exceptions, trace table, crypto operation.
        0x30..=0x34 | 0x16 | 0x119 => c(true, false, false, false),
        _ => c(false, false, false, false),
    }
}

/// Stores into the lowcore at the prefix, remembering whether any store failed.
struct Lowcore<'a> {
    vm: &'a Vm,
    prefix: u64,
    fault: bool,
}

impl Lowcore<'_> {
    fn store(&mut self, offset: u64, bytes: &[u8]) {
        let a = AbsoluteAddress(self.prefix + offset);
        match self.vm.storage().write(a, bytes) {
            // §13.1: a delivery's stores set R and C like any store.
            Ok(()) => self
                .vm
                .storage()
                .mark(a, StorageKey::REFERENCE | StorageKey::CHANGE),
            Err(_) => self.fault = true,
        }
    }

    fn load_psw(&mut self, offset: u64) -> Option<Psw> {
        let a = AbsoluteAddress(self.prefix + offset);
        let mut b = [0u8; 16];
        if self.vm.storage().read(a, &mut b).is_err() {
            self.fault = true;
            return None;
        }
        self.vm.storage().mark(a, StorageKey::REFERENCE);
        let (mask, addr) = b.split_at(8);
        Some(Psw {
            mask: u64::from_be_bytes(mask.try_into().unwrap_or_default()),
            addr: u64::from_be_bytes(addr.try_into().unwrap_or_default()),
        })
    }
}

/// `__rewind_psw`: the instruction address less `ilen`, wrapped to the addressing
/// mode (EA → 64-bit, else BA → 31-bit, else 24-bit).
fn rewind_psw(psw: &Psw, ilen: u8) -> u64 {
    let mask = if psw.mask & Psw::EA != 0 {
        u64::MAX
    } else if psw.mask & Psw::BA != 0 {
        0x7FFF_FFFF
    } else {
        0x00FF_FFFF
    };
    psw.addr.wrapping_sub(ilen as u64) & mask
}

/// `__deliver_prog` (§9.5): take the pending program interruption and write it into
/// the lowcore at absolute `prefix + offset`:
/// 1. the code-specific fields (TEID @168, exception access id @160, operand access
///    id @162, by code);
/// 2. for a nullifying code without NO_REWIND, rewind the PSW by the ILC;
/// 3. ILC @140, breaking-event address (`vcpu.gbea`) @272, code @142, old PSW @336;
/// 4. load the new PSW from @464.
///
/// Protected vCPUs get their interruptions through the ultravisor: the pending record
/// is consumed and the lowcore is not touched. The model's record carries no PER,
/// monitor or data-exception payload, so those lowcore fields are not stored.
pub fn deliver_program_interruption(vm: &Vm, vcpu: &mut Vcpu) -> Delivery {
    let Some(pgm) = vcpu.pending_pgm.take() else {
        return Delivery::NothingPending;
    };
    if vcpu.protected {
        return Delivery::Delivered;
    }
    let ilen = pgm.flags & KVM_S390_PGM_FLAGS_ILC_MASK;
    let class = delivery_class(pgm.code & !Pgm::PER.0);
    let mut lc = Lowcore {
        vm,
        prefix: vcpu.effective_prefix(),
        fault: false,
    };
    if class.teid {
        lc.store(lowcore::TRANS_EXC_CODE, &pgm.teid.0.to_be_bytes());
    }
    if class.exc_access_id {
        lc.store(lowcore::EXC_ACCESS_ID, &[pgm.exc_access_id]);
    }
    if class.op_access_id {
        lc.store(lowcore::OP_ACCESS_ID, &[pgm.op_access_id]);
    }
    if class.nullifying && pgm.flags & KVM_S390_PGM_FLAGS_NO_REWIND == 0 {
        vcpu.psw.addr = rewind_psw(&vcpu.psw, ilen);
    }
    lc.store(lowcore::PGM_ILC, &(ilen as u16).to_be_bytes());
    lc.store(lowcore::PGM_LAST_BREAK, &vcpu.gbea.to_be_bytes());
    lc.store(lowcore::PGM_CODE, &pgm.code.to_be_bytes());
    let mut old = [0u8; 16];
    old[..8].copy_from_slice(&vcpu.psw.mask.to_be_bytes());
    old[8..].copy_from_slice(&vcpu.psw.addr.to_be_bytes());
    lc.store(lowcore::PGM_OLD_PSW, &old);
    if let Some(new) = lc.load_psw(lowcore::PGM_NEW_PSW) {
        vcpu.psw = new;
    }
    if lc.fault {
        Delivery::LowcoreNotInMemory
    } else {
        Delivery::Delivered
    }
}

/// Deliver the pending program interruption, as KVM does on the next `KVM_RUN`
/// (§9.5). Returns whether one was pending (and is now consumed); see
/// [`deliver_program_interruption`] for the details and the lowcore-outside-memory
/// case.
pub fn deliver_pending(vm: &Vm, vcpu: &mut Vcpu) -> bool {
    deliver_program_interruption(vm, vcpu) != Delivery::NothingPending
}

#[cfg(test)]
mod tests {
    use super::*;

    // §9.5: kvm_s390_get_ilen.
    #[test]
    fn ilen_from_intercept() {
        let i = |icptcode, ipa, icptstatus, pgmilc| {
            intercept_ilen(&SieIntercept {
                icptcode,
                ipa,
                icptstatus,
                pgmilc,
            })
        };
        assert_eq!(i(icpt::INST, 0xB200, 0, 0), 4);
        assert_eq!(i(icpt::INST, 0x0A00, 0, 0), 2);
        assert_eq!(i(icpt::KSS, 0xE300, 0, 0), 6);
        assert_eq!(i(icpt::INST, 0xB200, 0x61, 0), 6);
        assert_eq!(i(icpt::INST, 0xB200, 0x01, 0), 4);
        assert_eq!(i(icpt::PROGI, 0, 0, 0x07), 6);
        assert_eq!(i(0x10, 0xB200, 0, 6), 0);
    }

    // __rewind_psw wraps to the addressing mode decided by EA first.
    #[test]
    fn rewind_wraps_by_mode() {
        let p = |mask, addr| Psw { mask, addr };
        assert_eq!(rewind_psw(&p(Psw::EA | Psw::BA, 2), 4), u64::MAX - 1);
        assert_eq!(rewind_psw(&p(Psw::BA, 2), 4), 0x7FFF_FFFE);
        assert_eq!(rewind_psw(&p(0, 2), 4), 0xFF_FFFE);
        assert_eq!(rewind_psw(&p(Psw::EA, 2), 4), u64::MAX - 1);
    }
}
