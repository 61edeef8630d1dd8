//! A bit-exact model of how Linux KVM accesses the memory of an s390 (z/Architecture)
//! guest: DAT, prefixing, access-register translation, protection, storage keys and the
//! `KVM_S390_MEM_OP` ioctl. Section numbers (§) cite `kernel-semantics.md`.
//!
//! Layering (each module uses only those listed before it): [`addr`]; [`storage`],
//! [`vcpu`], [`exception`]; [`keys`]; [`vm`]; [`protection`]; [`dat`]; [`translate`];
//! [`access`]; [`memop`]; [`scenario`].
#![forbid(unsafe_op_in_unsafe_fn)]
#![deny(unsafe_code)]

pub mod access;
pub mod addr;
pub mod dat;
pub mod exception;
pub mod keys;
pub mod memop;
pub mod oracle;
pub mod perf;
pub mod protection;
pub mod scenario;
#[allow(unsafe_code)]
pub mod storage;
pub mod tlb;
pub mod tprot;
pub mod translate;
pub mod vcpu;
pub mod vm;
