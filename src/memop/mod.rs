//! The `KVM_S390_MEM_OP` ioctl surface (§2, §3) and the storage-key ioctls.
//!
//! * [`abi`]: `struct kvm_s390_mem_op` and friends, op codes, flags, ioctl numbers
//!   and capability values (§2);
//! * [`vm_mem_op`] and [`vcpu_mem_op`]: the raw entry points of the VM fd and the vCPU
//!   fd. They take the struct and the user memory ([`UserMemory`]) and return the
//!   ioctl's `i32` exactly as §3 describes, validating in the kernel's order;
//! * [`MemOp`]: a typed builder in the selftest's vocabulary that runs through the
//!   same raw path;
//! * [`inject_program_interruption`] / [`deliver_pending`]: INJECT_EXCEPTION's
//!   queueing and the delivery into the lowcore (§9.5);
//! * [`get_skeys`], [`set_skeys`], [`keyop`]: the storage-key ioctls.
//!
//! The guest accesses themselves are the engine's ([`crate::access`]); this module
//! adds validation, user copies, the pgm record and injection.
//!
//! Outcomes are plain data: an `i32` as the kernel returns it, with the user buffers,
//! guest memory, keys and vCPU state changed exactly where the kernel changes them.
//! No input struct makes these functions panic.
#![forbid(unsafe_code)]

pub mod abi;
mod builder;
mod inject;
mod skeys;
mod user;
mod validate;
mod vcpu_ioctl;
mod vm_ioctl;

pub use abi::KvmS390MemOp;
pub use builder::{MemOp, MemOpResult};
pub use inject::{
    Delivery, deliver_pending, deliver_program_interruption, icpt, inject_program_interruption,
    instruction_length, intercept_ilen, lowcore,
};
pub use skeys::{get_skeys, keyop, set_skeys};
pub use user::{UserBuffer, UserMemory};
pub use vcpu_ioctl::{sida_size, vcpu_mem_op};
pub use vm_ioctl::vm_mem_op;

use abi::{
    KVM_CAP_S390_MEM_OP, KVM_CAP_S390_MEM_OP_EXTENSION, KVM_S390_MEMOP_EXTENSION_CAP_BASE,
    KVM_S390_MEMOP_EXTENSION_CAP_CMPXCHG, MEM_OP_MAX_SIZE,
};

/// Which kernel's behaviour to model. The two differ only where §6.4 says: the
/// pre-rewrite up-front memslot check of the absolute and cmpxchg handlers (§3.3,
/// §3.4) and the pre-rewrite absolute CHECK_ONLY (§6.3). Validation order, the
/// logical path and the capabilities are the same (§1, §3.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// The 2026 gmap rewrite and later (`linux-7.0`). The default.
    #[default]
    Linux70,
    /// v6.3 up to the rewrite (`linux-6.3`).
    Linux63,
}

impl Profile {
    /// Both profiles.
    pub const ALL: [Profile; 2] = [Profile::Linux70, Profile::Linux63];

    /// The profile's name as scenario files spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Profile::Linux70 => "linux-7.0",
            Profile::Linux63 => "linux-6.3",
        }
    }
}

/// `KVM_CHECK_EXTENSION` for the memop capabilities (§2.1), the same for both
/// profiles: `KVM_CAP_S390_MEM_OP` → 65536, `KVM_CAP_S390_MEM_OP_EXTENSION` → 3
/// (BASE | CMPXCHG); any other capability → 0 (not modelled).
pub fn check_extension(cap: u32) -> i32 {
    match cap {
        KVM_CAP_S390_MEM_OP => MEM_OP_MAX_SIZE as i32,
        KVM_CAP_S390_MEM_OP_EXTENSION => {
            (KVM_S390_MEMOP_EXTENSION_CAP_BASE | KVM_S390_MEMOP_EXTENSION_CAP_CMPXCHG) as i32
        }
        _ => 0,
    }
}
