//! A typed way to issue memops, in the vocabulary of the selftest's `MOP(...)` macro
//! (selftest-cases.md §2): `MemOp::logical_read(gaddr, size).key(9).check_only()`.
//!
//! A [`MemOp`] builds the raw [`KvmS390MemOp`] plus the user buffers and runs them
//! through the raw entry points ([`super::vm_mem_op`], [`super::vcpu_mem_op`]), so it
//! behaves exactly like the ioctl, bad inputs included.
#![forbid(unsafe_code)]

use super::abi::{
    KVM_S390_MEMOP_ABSOLUTE_CMPXCHG, KVM_S390_MEMOP_ABSOLUTE_READ, KVM_S390_MEMOP_ABSOLUTE_WRITE,
    KVM_S390_MEMOP_F_CHECK_ONLY, KVM_S390_MEMOP_F_INJECT_EXCEPTION,
    KVM_S390_MEMOP_F_SKEY_PROTECTION, KVM_S390_MEMOP_LOGICAL_READ, KVM_S390_MEMOP_LOGICAL_WRITE,
    KVM_S390_MEMOP_SIDA_READ, KVM_S390_MEMOP_SIDA_WRITE, KvmS390MemOp,
};
use super::user::{UserBuffer, UserMemory};
use super::{Profile, vcpu_mem_op, vm_mem_op};
use crate::exception::{Errno, PgmInfo};
use crate::vcpu::Vcpu;
use crate::vm::Vm;

/// The largest user buffer a memop can copy: a SIDA of 256 pages (§3.8). Other ops
/// copy at most 64 KiB; larger sizes fail validation before any copy, so a read
/// buffer is allocated with at most this many bytes.
const MAX_COPY: usize = 256 * 4096;

/// One memop, ready to run on a VM or a vCPU.
#[derive(Clone, Debug)]
pub struct MemOp {
    mop: KvmS390MemOp,
    /// The bytes at `buf`: write data or cmpxchg's new value; `None` for reads.
    data: Option<Vec<u8>>,
    /// The bytes at `old_addr` (cmpxchg).
    old: Option<Vec<u8>>,
    buf_null: bool,
    old_null: bool,
    profile: Profile,
}

/// The outcome of a [`MemOp`]: the ioctl's return value and the user buffers as the
/// kernel left them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemOpResult {
    /// What the ioctl returned: 0, a positive program-interruption code, or a negative
    /// errno (§3.9).
    pub ret: i32,
    /// The buffer at `buf` after the call: the data read (it starts as zeros, so a
    /// failed read leaves zeros), or the write data / cmpxchg new value unchanged.
    pub data: Vec<u8>,
    /// The buffer at `old_addr` after the call (cmpxchg; empty otherwise).
    pub old: Vec<u8>,
    /// The vCPU's program-interruption record after a positive return of a vCPU op.
    pub pgm: Option<PgmInfo>,
    /// For cmpxchg returning 0: whether the exchange happened, i.e. the `old` buffer
    /// came back unchanged (the selftest's `succ`).
    pub exchanged: Option<bool>,
}

impl MemOpResult {
    /// The errno of a negative return.
    pub fn errno(&self) -> Option<Errno> {
        Errno::from_ret(self.ret)
    }
    /// The program-interruption code of a positive return.
    pub fn pgm_code(&self) -> Option<u16> {
        (self.ret > 0).then_some(self.ret as u16)
    }
}

impl MemOp {
    fn with_op(op: u32, gaddr: u64, size: u32, data: Option<Vec<u8>>) -> Self {
        Self {
            mop: KvmS390MemOp::new(op, gaddr, size),
            data,
            old: None,
            buf_null: false,
            old_null: false,
            profile: Profile::default(),
        }
    }

    /// Vcpu `LOGICAL_READ` of `size` bytes at logical `gaddr`.
    pub fn logical_read(gaddr: u64, size: u32) -> Self {
        Self::with_op(KVM_S390_MEMOP_LOGICAL_READ, gaddr, size, None)
    }
    /// Vcpu `LOGICAL_WRITE` of `data` at logical `gaddr`.
    pub fn logical_write(gaddr: u64, data: impl Into<Vec<u8>>) -> Self {
        let data = data.into();
        Self::with_op(
            KVM_S390_MEMOP_LOGICAL_WRITE,
            gaddr,
            len32(&data),
            Some(data),
        )
    }
    /// Vm `ABSOLUTE_READ` of `size` bytes at absolute `gaddr`.
    pub fn absolute_read(gaddr: u64, size: u32) -> Self {
        Self::with_op(KVM_S390_MEMOP_ABSOLUTE_READ, gaddr, size, None)
    }
    /// Vm `ABSOLUTE_WRITE` of `data` at absolute `gaddr`.
    pub fn absolute_write(gaddr: u64, data: impl Into<Vec<u8>>) -> Self {
        let data = data.into();
        Self::with_op(
            KVM_S390_MEMOP_ABSOLUTE_WRITE,
            gaddr,
            len32(&data),
            Some(data),
        )
    }
    /// Vm `ABSOLUTE_CMPXCHG` at absolute `gaddr`: store `new` if memory holds `old`.
    /// The size is `new.len()`.
    pub fn absolute_cmpxchg(gaddr: u64, new: impl Into<Vec<u8>>, old: impl Into<Vec<u8>>) -> Self {
        let new = new.into();
        let mut m = Self::with_op(
            KVM_S390_MEMOP_ABSOLUTE_CMPXCHG,
            gaddr,
            len32(&new),
            Some(new),
        );
        m.old = Some(old.into());
        m
    }
    /// Vcpu `SIDA_READ` of `size` bytes at `offset` into the SIDA.
    pub fn sida_read(offset: u32, size: u32) -> Self {
        Self::with_op(KVM_S390_MEMOP_SIDA_READ, 0, size, None).sida_offset(offset)
    }
    /// Vcpu `SIDA_WRITE` of `data` at `offset` into the SIDA.
    pub fn sida_write(offset: u32, data: impl Into<Vec<u8>>) -> Self {
        let data = data.into();
        Self::with_op(KVM_S390_MEMOP_SIDA_WRITE, 0, len32(&data), Some(data)).sida_offset(offset)
    }
    /// Any op number, for bad-input cases: `size` bytes at `gaddr`; `buf` holds `size`
    /// zero bytes (capped, see the module constants).
    pub fn raw(op: u32, gaddr: u64, size: u32) -> Self {
        Self::with_op(op, gaddr, size, None)
    }

    /// `KEY(k)`: set SKEY_PROTECTION and the key byte.
    pub fn key(mut self, key: u8) -> Self {
        self.mop
            .set_flags(self.mop.flags() | KVM_S390_MEMOP_F_SKEY_PROTECTION);
        self.mop.set_key(key);
        self
    }
    /// Set the key byte only (the flag stays as it is).
    pub fn key_byte(mut self, key: u8) -> Self {
        self.mop.set_key(key);
        self
    }
    /// `AR(n)`: the access-register number.
    pub fn ar(mut self, ar: u8) -> Self {
        self.mop.set_ar(ar);
        self
    }
    /// Add CHECK_ONLY.
    pub fn check_only(mut self) -> Self {
        self.mop
            .set_flags(self.mop.flags() | KVM_S390_MEMOP_F_CHECK_ONLY);
        self
    }
    /// Add INJECT_EXCEPTION.
    pub fn inject(mut self) -> Self {
        self.mop
            .set_flags(self.mop.flags() | KVM_S390_MEMOP_F_INJECT_EXCEPTION);
        self
    }
    /// Replace all flag bits.
    pub fn flags(mut self, flags: u64) -> Self {
        self.mop.set_flags(flags);
        self
    }
    /// Replace the size (the buffers stay as given).
    pub fn size(mut self, size: u32) -> Self {
        self.mop.set_size(size);
        self
    }
    /// Replace the op number.
    pub fn op(mut self, op: u32) -> Self {
        self.mop.set_op(op);
        self
    }
    /// Set `sida_offset` (overlays `ar` and `key`, §2.2).
    pub fn sida_offset(mut self, offset: u32) -> Self {
        self.mop.set_sida_offset(offset);
        self
    }
    /// Fill the union's 32 bytes (the selftest's `reserved = "ignored_ignored..."`);
    /// later `ar`/`key` calls overwrite their bytes.
    pub fn reserved(mut self, bytes: [u8; 32]) -> Self {
        self.mop.set_reserved(bytes);
        self
    }
    /// Make `buf` a NULL pointer: every copy to or from it faults.
    pub fn null_buf(mut self) -> Self {
        self.buf_null = true;
        self
    }
    /// Make `old_addr` a NULL pointer.
    pub fn null_old(mut self) -> Self {
        self.old_null = true;
        self
    }
    /// The kernel profile to model (default `linux-7.0`).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// The raw struct this memop passes.
    pub fn as_struct(&self) -> &KvmS390MemOp {
        &self.mop
    }

    /// Run it through the VM-fd ioctl ([`vm_mem_op`]).
    pub fn run_vm(&self, vm: &Vm) -> MemOpResult {
        self.run(|mop, user| vm_mem_op(vm, self.profile, mop, user))
    }

    /// Run it through the vCPU-fd ioctl ([`vcpu_mem_op`]).
    pub fn run_vcpu(&self, vm: &Vm, vcpu: &mut Vcpu) -> MemOpResult {
        let profile = self.profile;
        let mut r = self.run(|mop, user| vcpu_mem_op(vm, vcpu, profile, mop, user));
        r.pgm = (r.ret > 0).then_some(vcpu.pgm);
        r
    }

    fn run(&self, call: impl FnOnce(&KvmS390MemOp, &mut UserMemory<'_>) -> i32) -> MemOpResult {
        let mut data = match &self.data {
            Some(d) => d.clone(),
            None => vec![0u8; (self.mop.size() as usize).min(MAX_COPY)],
        };
        let old_before = self.old.clone().unwrap_or_default();
        let mut old = old_before.clone();
        let ret = {
            let mut user = UserMemory {
                buf: if self.buf_null {
                    UserBuffer::Null
                } else {
                    UserBuffer::Valid(&mut data)
                },
                old: if self.old_null || self.old.is_none() {
                    UserBuffer::Null
                } else {
                    UserBuffer::Valid(&mut old)
                },
            };
            call(&self.mop, &mut user)
        };
        let exchanged = (self.mop.op() == KVM_S390_MEMOP_ABSOLUTE_CMPXCHG && ret == 0)
            .then(|| old == old_before);
        MemOpResult {
            ret,
            data,
            old,
            pgm: None,
            exchanged,
        }
    }
}

/// A buffer's length as a memop size (saturating; such sizes fail validation anyway).
fn len32(data: &[u8]) -> u32 {
    u32::try_from(data.len()).unwrap_or(u32::MAX)
}
