//! `mem_op_validate_common` (§3.2) and the small helpers every handler shares.
#![forbid(unsafe_code)]

use super::abi::{KVM_S390_MEMOP_F_SKEY_PROTECTION, KvmS390MemOp, MEM_OP_MAX_SIZE};
use crate::exception::{AccessError, Errno};
use crate::keys::AccessKey;

/// `mem_op_validate_common(mop, supported)` (§3.2), checks in this order:
/// 1. a flag outside `supported`, or `size == 0` → -EINVAL;
/// 2. `size > 65536` → -E2BIG;
/// 3. with SKEY_PROTECTION, `key > 15` → -EINVAL; without it the key is 0 (the kernel
///    overwrites the field, §2.2).
///
/// Returns the access key to use.
pub(crate) fn validate_common(mop: &KvmS390MemOp, supported: u64) -> Result<AccessKey, Errno> {
    if mop.flags() & !supported != 0 || mop.size() == 0 {
        return Err(Errno::Einval);
    }
    if mop.size() > MEM_OP_MAX_SIZE {
        return Err(Errno::E2big);
    }
    if mop.flags() & KVM_S390_MEMOP_F_SKEY_PROTECTION == 0 {
        return Ok(AccessKey::ZERO);
    }
    AccessKey::new(mop.key()).ok_or(Errno::Einval)
}

/// Whether `flag` is set in the struct.
pub(crate) fn has_flag(mop: &KvmS390MemOp, flag: u64) -> bool {
    mop.flags() & flag != 0
}

/// The ioctl return value of a handler's outcome: 0, the positive program-interruption
/// code, or the negative errno (§3.9).
pub(crate) fn ioctl_ret(r: Result<(), AccessError>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => e.ret(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memop::abi::KVM_S390_MEMOP_F_CHECK_ONLY;

    // §3.2 order: flags/size 0 before E2BIG before the key.
    #[test]
    fn order_of_common_checks() {
        let f = KVM_S390_MEMOP_F_SKEY_PROTECTION;
        let mut m = KvmS390MemOp::new(0, 0, 0);
        assert_eq!(validate_common(&m, f), Err(Errno::Einval));
        m.set_size(65537);
        m.set_flags(f);
        m.set_key(16);
        assert_eq!(validate_common(&m, f), Err(Errno::E2big));
        m.set_size(65536);
        assert_eq!(validate_common(&m, f), Err(Errno::Einval));
        m.set_key(15);
        assert_eq!(validate_common(&m, f).map(|k| k.value()), Ok(15));
        m.set_flags(KVM_S390_MEMOP_F_CHECK_ONLY);
        assert_eq!(validate_common(&m, f), Err(Errno::Einval));
        m.set_flags(0);
        m.set_key(0xFF);
        assert_eq!(validate_common(&m, f), Ok(AccessKey::ZERO));
    }
}
