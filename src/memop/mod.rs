//! The `KVM_S390_MEM_OP` ioctl surface (§2, §3).
