//! `KVM_S390_MEM_OP` on the VM fd: absolute read/write (§3.3, §6) and absolute
//! compare-and-exchange (§3.4, §7).
#![forbid(unsafe_code)]

use super::Profile;
use super::abi::{
    KVM_S390_MEMOP_ABSOLUTE_CMPXCHG, KVM_S390_MEMOP_ABSOLUTE_READ, KVM_S390_MEMOP_ABSOLUTE_WRITE,
    KVM_S390_MEMOP_F_CHECK_ONLY, KVM_S390_MEMOP_F_SKEY_PROTECTION, KvmS390MemOp,
};
use super::user::UserMemory;
use super::validate::{has_flag, ioctl_ret, validate_common};
use crate::access::{
    Buffer, access_absolute, check_absolute, check_absolute_pre_rewrite, cmpxchg_absolute,
};
use crate::addr::AbsoluteAddress;
use crate::exception::{AccessError, AccessMode, Errno, ProgramInterruptionCode as Pgm};
use crate::vm::Vm;

/// The largest cmpxchg operand (§3.4 step 2).
const CMPXCHG_MAX_SIZE: usize = 16;

/// `kvm_s390_vm_mem_op` (§3.1): the VM-fd `KVM_S390_MEM_OP` ioctl. Returns what the
/// ioctl returns: 0, a positive program-interruption code (4 or 5), or a negative
/// errno (§3.9). `user` is left as the kernel leaves it: read data only on success,
/// cmpxchg's old value rewritten per §7.
///
/// Order: protected VM → -EINVAL (before the op is looked at), then dispatch on `op`:
/// 4/5 absolute read/write, 6 cmpxchg, anything else -EINVAL.
pub fn vm_mem_op(vm: &Vm, profile: Profile, mop: &KvmS390MemOp, user: &mut UserMemory<'_>) -> i32 {
    if vm.is_protected() {
        return Errno::Einval.ret();
    }
    let r = match mop.op() {
        KVM_S390_MEMOP_ABSOLUTE_READ | KVM_S390_MEMOP_ABSOLUTE_WRITE => {
            absolute_read_write(vm, profile, mop, user)
        }
        KVM_S390_MEMOP_ABSOLUTE_CMPXCHG => absolute_cmpxchg(vm, profile, mop, user),
        _ => Err(Errno::Einval.into()),
    };
    ioctl_ret(r)
}

/// The pre-rewrite up-front check (§3.3, §3.4, §6.4, `linux-6.3` only): PGM 5 when the
/// first byte is outside memory.
fn pre_rewrite_memslot_check(vm: &Vm, profile: Profile, gaddr: u64) -> Result<(), AccessError> {
    if profile == Profile::Linux63 && !vm.storage().in_memory(AbsoluteAddress(gaddr)) {
        return Err(AccessError::bare(Pgm::ADDRESSING));
    }
    Ok(())
}

/// `kvm_s390_vm_mem_op_abs` (§3.3).
fn absolute_read_write(
    vm: &Vm,
    profile: Profile,
    mop: &KvmS390MemOp,
    user: &mut UserMemory<'_>,
) -> Result<(), AccessError> {
    let key = validate_common(
        mop,
        KVM_S390_MEMOP_F_SKEY_PROTECTION | KVM_S390_MEMOP_F_CHECK_ONLY,
    )?;
    let mode = if mop.op() == KVM_S390_MEMOP_ABSOLUTE_READ {
        AccessMode::Fetch
    } else {
        AccessMode::Store
    };
    let gaddr = mop.gaddr();
    let size = mop.size() as usize;
    pre_rewrite_memslot_check(vm, profile, gaddr)?;
    if has_flag(mop, KVM_S390_MEMOP_F_CHECK_ONLY) {
        // §6.2 / §6.3: `buf` is not touched.
        let check = match profile {
            Profile::Linux70 => check_absolute,
            Profile::Linux63 => check_absolute_pre_rewrite,
        };
        return check(vm, gaddr, size as u64, mode, key).map_err(AccessError::bare);
    }
    match mode {
        AccessMode::Store => {
            // copy_from_user comes before any guest access (§3.3 step 4).
            let data = user.buf.copy_from(size)?;
            access_absolute(vm, gaddr, Buffer::Store(data), key).map_err(AccessError::bare)
        }
        _ => {
            // A fetch leaves its buffer unchanged on failure, as the kernel leaves the
            // user's (scratch buffer, §3.3): read in place when the copy-out would work.
            if let Some(dst) = user.buf.writable(size) {
                return access_absolute(vm, gaddr, Buffer::Fetch(dst), key)
                    .map_err(AccessError::bare);
            }
            let mut tmp = vec![0u8; size];
            access_absolute(vm, gaddr, Buffer::Fetch(&mut tmp), key).map_err(AccessError::bare)?;
            Ok(user.buf.copy_to(&tmp)?)
        }
    }
}

/// `kvm_s390_vm_mem_op_cmpxchg` (§3.4, §7): validation (SKEY only, size ≤ 16), copy
/// `new` from `buf` and `old` from `old_addr`, the exchange, and the copy-back of `old`
/// whenever the exchange did not happen (a failing copy-back turns the result into
/// -EFAULT).
fn absolute_cmpxchg(
    vm: &Vm,
    profile: Profile,
    mop: &KvmS390MemOp,
    user: &mut UserMemory<'_>,
) -> Result<(), AccessError> {
    let key = validate_common(mop, KVM_S390_MEMOP_F_SKEY_PROTECTION)?;
    let size = mop.size() as usize;
    if size > CMPXCHG_MAX_SIZE {
        return Err(Errno::Einval.into());
    }
    let mut new = [0u8; CMPXCHG_MAX_SIZE];
    new[..size].copy_from_slice(user.buf.copy_from(size)?);
    let mut old = [0u8; CMPXCHG_MAX_SIZE];
    old[..size].copy_from_slice(user.old.copy_from(size)?);
    // Pre-rewrite: PGM 5 without the copy-back (§3.4, §6.4).
    pre_rewrite_memslot_check(vm, profile, mop.gaddr())?;
    let r = cmpxchg_absolute(vm, mop.gaddr(), &mut old[..size], &new[..size], key);
    if !matches!(r, Ok(true)) {
        user.old.copy_to(&old[..size])?;
    }
    r.map(|_exchanged| ())
}
