//! `KVM_S390_MEM_OP` on the vCPU fd: logical read/write (§3.6, §5) and SIDA
//! read/write (§3.8).
#![forbid(unsafe_code)]

use super::Profile;
use super::abi::{
    KVM_S390_MEMOP_F_CHECK_ONLY, KVM_S390_MEMOP_F_INJECT_EXCEPTION,
    KVM_S390_MEMOP_F_SKEY_PROTECTION, KVM_S390_MEMOP_LOGICAL_READ, KVM_S390_MEMOP_LOGICAL_WRITE,
    KVM_S390_MEMOP_SIDA_READ, KVM_S390_MEMOP_SIDA_WRITE, KvmS390MemOp,
};
use super::inject::inject_program_interruption;
use super::user::UserMemory;
use super::validate::{has_flag, ioctl_ret, validate_common};
use crate::access::{Buffer, access_logical, check_logical};
use crate::exception::{AccessError, AccessMode, Errno};
use crate::vcpu::Vcpu;
use crate::vm::Vm;

/// Bytes per SIDA page.
const SIDA_PAGE: usize = 4096;
/// `sidad & 0xff` gives at most 256 pages.
const SIDA_MAX_PAGES: usize = 256;

/// `kvm_s390_vcpu_memsida_op` (§3.5): the vCPU-fd `KVM_S390_MEM_OP` ioctl. Ops 0/1
/// are logical accesses, 2/3 SIDA accesses, anything else (absolute ops included)
/// -EINVAL. Returns what the ioctl returns (§3.9).
///
/// After a positive return of a logical op the record `trans_exc` built is in
/// `vcpu.pgm` (the kernel's `vcpu->arch.pgm`), for CHECK_ONLY as for the real access;
/// with INJECT_EXCEPTION it is also queued in `vcpu.pending_pgm` (§3.11, §9.5).
///
/// Both profiles validate in the newest order (§3.7 note), so `profile` changes
/// nothing here; it is taken for symmetry with [`super::vm_mem_op`].
pub fn vcpu_mem_op(
    vm: &Vm,
    vcpu: &mut Vcpu,
    profile: Profile,
    mop: &KvmS390MemOp,
    user: &mut UserMemory<'_>,
) -> i32 {
    let _ = profile;
    match mop.op() {
        KVM_S390_MEMOP_LOGICAL_READ | KVM_S390_MEMOP_LOGICAL_WRITE => logical(vm, vcpu, mop, user),
        KVM_S390_MEMOP_SIDA_READ | KVM_S390_MEMOP_SIDA_WRITE => ioctl_ret(sida(vcpu, mop, user)),
        _ => Errno::Einval.ret(),
    }
}

/// `kvm_s390_vcpu_mem_op` (§3.6).
fn logical(vm: &Vm, vcpu: &mut Vcpu, mop: &KvmS390MemOp, user: &mut UserMemory<'_>) -> i32 {
    let supported = KVM_S390_MEMOP_F_INJECT_EXCEPTION
        | KVM_S390_MEMOP_F_CHECK_ONLY
        | KVM_S390_MEMOP_F_SKEY_PROTECTION;
    let key = match validate_common(mop, supported) {
        Ok(k) => k,
        Err(e) => return e.ret(),
    };
    // Unconditional, whatever the PSW's address-space control (§3.6 step 2).
    if mop.ar() >= 16 || vcpu.protected {
        return Errno::Einval.ret();
    }
    let mode = if mop.op() == KVM_S390_MEMOP_LOGICAL_READ {
        AccessMode::Fetch
    } else {
        AccessMode::Store
    };
    let (gaddr, ar, size) = (mop.gaddr(), mop.ar(), mop.size() as usize);
    let r = if has_flag(mop, KVM_S390_MEMOP_F_CHECK_ONLY) {
        check_logical(vm, vcpu, gaddr, ar, size as u64, mode, key)
    } else if mode == AccessMode::Fetch {
        // A fetch leaves its buffer unchanged on an exception, as the kernel leaves the
        // user's (it reads into a scratch buffer, §3.6 step 4): read straight into a
        // user buffer that the copy-out would reach. Otherwise the scratch buffer.
        if let Some(dst) = user.buf.writable(size) {
            let r = access_logical(vm, vcpu, gaddr, ar, Buffer::Fetch(dst), key);
            return finish_logical(vcpu, mop, r);
        }
        let mut tmp = vec![0u8; size];
        let r = access_logical(vm, vcpu, gaddr, ar, Buffer::Fetch(&mut tmp), key);
        if r.is_ok() && user.buf.copy_to(&tmp).is_err() {
            // Returned at once: no injection (§3.6 step 6).
            return Errno::Efault.ret();
        }
        r
    } else {
        // Copied before any translation; a fault returns at once (§3.6 step 6).
        let Ok(data) = user.buf.copy_from(size) else {
            return Errno::Efault.ret();
        };
        access_logical(vm, vcpu, gaddr, ar, Buffer::Store(data), key)
    };
    finish_logical(vcpu, mop, r)
}

/// The end of `kvm_s390_vcpu_mem_op` (§3.6 step 7): record the program interruption
/// and inject it if asked; the ioctl's return value.
fn finish_logical(vcpu: &mut Vcpu, mop: &KvmS390MemOp, r: Result<(), AccessError>) -> i32 {
    if let Err(AccessError::Program(p)) = &r {
        vcpu.pgm = p.info;
        if has_flag(mop, KVM_S390_MEMOP_F_INJECT_EXCEPTION) {
            inject_program_interruption(vcpu, p.info);
        }
    }
    ioctl_ret(r)
}

/// `sida_size(sie_block)` (§3.8): `((sidad & 0xff) + 1) * 4096`. A non-protected
/// vCPU has `sidad` 0, so 4096. For a protected vCPU the model's SIDA is `vcpu.sida`,
/// whose length is rounded up to whole pages (at least 1, at most 256).
pub fn sida_size(vcpu: &Vcpu) -> u32 {
    let pages = if vcpu.protected {
        vcpu.sida.len().div_ceil(SIDA_PAGE).clamp(1, SIDA_MAX_PAGES)
    } else {
        1
    };
    (pages * SIDA_PAGE) as u32
}

/// `kvm_s390_vcpu_sida_op` (§3.8): flags ≠ 0 or size 0 → -EINVAL; `size +
/// sida_offset` overflowing u32 → -EINVAL; beyond `sida_size` → -E2BIG; vCPU not
/// protected → -EINVAL; then the copy. `MEM_OP_MAX_SIZE` does not apply.
///
/// The SIDA is `sida_size` bytes; bytes beyond `vcpu.sida.len()` read as zero, and a
/// write there first zero-extends `vcpu.sida` to `sida_size`.
fn sida(vcpu: &mut Vcpu, mop: &KvmS390MemOp, user: &mut UserMemory<'_>) -> Result<(), AccessError> {
    if mop.flags() != 0 || mop.size() == 0 {
        return Err(Errno::Einval.into());
    }
    let end = mop
        .size()
        .checked_add(mop.sida_offset())
        .ok_or(Errno::Einval)?;
    if end > sida_size(vcpu) {
        return Err(Errno::E2big.into());
    }
    if !vcpu.protected {
        return Err(Errno::Einval.into());
    }
    let (start, end) = (mop.sida_offset() as usize, end as usize);
    if mop.op() == KVM_S390_MEMOP_SIDA_READ {
        let mut bytes = vec![0u8; end - start];
        // §3.8: the SIDA is `sida_size` bytes; bytes past `vcpu.sida` read as zero. An
        // offset beyond `vcpu.sida.len()` must not index it (found by fuzzing, see
        // tests/fuzz_regressions.rs).
        let have = vcpu.sida.len().clamp(start, end);
        if have > start {
            bytes[..have - start].copy_from_slice(&vcpu.sida[start..have]);
        }
        Ok(user.buf.copy_to(&bytes)?)
    } else {
        let data = user.buf.copy_from(end - start)?;
        if vcpu.sida.len() < end {
            vcpu.sida.resize(sida_size(vcpu) as usize, 0);
        }
        vcpu.sida[start..end].copy_from_slice(data);
        Ok(())
    }
}
