//! TEST PROTECTION as KVM emulates it (`handle_tprot`, §16): the condition code a key
//! gets for a logical address, or the program interruption made pending instead.
#![forbid(unsafe_code)]

use crate::exception::{
    AccessError, AccessMode, ProgramInterruption, ProgramInterruptionCode as Pgm,
};
use crate::keys::AccessKey;
use crate::translate::translate_address_with_key;
use crate::vcpu::Vcpu;
use crate::vm::Vm;

/// What TPROT does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TprotOutcome {
    /// A condition code: 0 fetch and store permitted, 1 fetch only, 2 neither,
    /// 3 translation not available.
    ConditionCode(u8),
    /// A program interruption is injected instead (privileged operation, addressing,
    /// translation specification); the record is what the kernel queues.
    Program(ProgramInterruption),
}

/// TPROT on logical address `gaddr` through access register `ar` with access key `key`
/// (§16). `ar` and `key` come from the instruction, so they are 4-bit values; larger
/// values are reduced to their low four bits as the instruction fields would be.
pub fn test_protection(vm: &Vm, vcpu: &Vcpu, gaddr: u64, ar: u8, key: u8) -> TprotOutcome {
    // Step 1: privileged.
    if vcpu.psw.problem_state() {
        return TprotOutcome::Program(ProgramInterruption::bare(Pgm::PRIVILEGED_OPERATION));
    }
    let key = AccessKey::new(key & 0xF).unwrap_or(AccessKey::ZERO);
    let ar = ar & 0xF;
    // Step 3-5: try a store, then a fetch.
    let mut r = translate_address_with_key(vm, vcpu, gaddr, ar, AccessMode::Store, key);
    let mut cc = 0;
    if is_protection(&r) {
        r = translate_address_with_key(vm, vcpu, gaddr, ar, AccessMode::Fetch, key);
        // A fetch that succeeds is cc 1; one that is refused too falls to cc 2 below.
        cc = 1;
    }
    match r {
        Ok(_) => TprotOutcome::ConditionCode(cc),
        Err(AccessError::Program(p)) if p.code == Pgm::PROTECTION => TprotOutcome::ConditionCode(2),
        // Step 6: addressing and translation specification are injected.
        Err(AccessError::Program(p))
            if p.code == Pgm::ADDRESSING || p.code == Pgm::TRANSLATION_SPECIFICATION =>
        {
            TprotOutcome::Program(p)
        }
        // Step 7: every other translation exception is cc 3. (No errno is reachable:
        // `ar` is below 16.)
        Err(_) => TprotOutcome::ConditionCode(3),
    }
}

fn is_protection(r: &Result<crate::addr::AbsoluteAddress, AccessError>) -> bool {
    matches!(r, Err(AccessError::Program(p)) if p.code == Pgm::PROTECTION)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::AbsoluteAddress;
    use crate::keys::StorageKey;

    // §16 steps 4-5 with DAT off: key rule on a frame with ACC 3.
    #[test]
    fn condition_codes_by_key() {
        let vm = Vm::with_memory(0x10000).unwrap();
        let vcpu = Vcpu::new();
        vm.set_storage_key(
            AbsoluteAddress(0x3000),
            StorageKey::new(3, false, false, false),
        )
        .unwrap();
        vm.set_storage_key(
            AbsoluteAddress(0x4000),
            StorageKey::new(3, true, false, false),
        )
        .unwrap();
        assert_eq!(
            test_protection(&vm, &vcpu, 0x3000, 0, 3),
            TprotOutcome::ConditionCode(0)
        );
        assert_eq!(
            test_protection(&vm, &vcpu, 0x3000, 0, 5),
            TprotOutcome::ConditionCode(1)
        );
        assert_eq!(
            test_protection(&vm, &vcpu, 0x4000, 0, 5),
            TprotOutcome::ConditionCode(2)
        );
        assert_eq!(
            test_protection(&vm, &vcpu, 0x4000, 0, 0),
            TprotOutcome::ConditionCode(0)
        );
        // §16 step 6: addressing is injected.
        match test_protection(&vm, &vcpu, 0x10_0000, 0, 0) {
            TprotOutcome::Program(p) => assert_eq!(p.code, Pgm::ADDRESSING),
            o => panic!("{o:?}"),
        }
    }

    // §16 step 1.
    #[test]
    fn problem_state_is_privileged_operation() {
        let vm = Vm::with_memory(0x10000).unwrap();
        let mut vcpu = Vcpu::new();
        vcpu.psw.mask |= crate::vcpu::Psw::PROBLEM_STATE;
        assert_eq!(
            test_protection(&vm, &vcpu, 0, 0, 0),
            TprotOutcome::Program(ProgramInterruption::bare(Pgm::PRIVILEGED_OPERATION))
        );
    }
}
