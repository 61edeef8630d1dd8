//! The user-space ABI of the memop and storage-key ioctls (§2): `struct
//! kvm_s390_mem_op`, `struct kvm_s390_skeys`, `struct kvm_s390_keyop`, the ioctl
//! numbers, op codes, flags and capability values.
//!
//! # Byte order
//!
//! s390 is big-endian, and these structs are what an s390 process hands to the kernel.
//! The mirrors here therefore hold every multi-byte field as a **big-endian** value
//! (`zerocopy`'s `U64<BigEndian>` and friends): the bytes of a mirror are exactly the
//! bytes of the struct in s390 memory, whatever the host's byte order. That keeps the
//! unions exact: `sida_offset` overlays `ar`, `key` and the first two `pad1` bytes, and
//! `ar` is its most significant byte (§2.2), on every host.
//!
//! * [`KvmS390MemOp::from_be_bytes`] / [`KvmS390MemOp::to_be_bytes`] convert from and to
//!   that s390 memory image (the same bytes `zerocopy::IntoBytes::as_bytes` gives);
//! * the accessors (`gaddr()`, `set_gaddr()`, ...) read and write native integers.
#![forbid(unsafe_code)]

use zerocopy::byteorder::big_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// `KVM_S390_MEM_OP` = `_IOW(KVMIO, 0xB1, struct kvm_s390_mem_op)`, on the VM and the
/// vCPU fd (§2.1).
pub const KVM_S390_MEM_OP: u32 = 0x4040_AEB1;
/// `KVM_S390_GET_SKEYS` = `_IOW(KVMIO, 0xB2, struct kvm_s390_skeys)`, VM fd.
pub const KVM_S390_GET_SKEYS: u32 = 0x4040_AEB2;
/// `KVM_S390_SET_SKEYS` = `_IOW(KVMIO, 0xB3, struct kvm_s390_skeys)`, VM fd.
pub const KVM_S390_SET_SKEYS: u32 = 0x4040_AEB3;
/// `KVM_S390_KEYOP` = `_IOWR(KVMIO, 0x53, struct kvm_s390_keyop)`, VM fd (2026).
pub const KVM_S390_KEYOP: u32 = 0xC010_AE53;

/// `KVM_CAP_S390_MEM_OP` (§2.1); `KVM_CHECK_EXTENSION` answers [`MEM_OP_MAX_SIZE`].
pub const KVM_CAP_S390_MEM_OP: u32 = 108;
/// `KVM_CAP_S390_MEM_OP_EXTENSION` (§2.1); answered with
/// `KVM_S390_MEMOP_EXTENSION_CAP_BASE | KVM_S390_MEMOP_EXTENSION_CAP_CMPXCHG`.
pub const KVM_CAP_S390_MEM_OP_EXTENSION: u32 = 211;
/// Extension bit: absolute vm ops and the storage-key flag.
pub const KVM_S390_MEMOP_EXTENSION_CAP_BASE: u32 = 1 << 0;
/// Extension bit: `KVM_S390_MEMOP_ABSOLUTE_CMPXCHG`.
pub const KVM_S390_MEMOP_EXTENSION_CAP_CMPXCHG: u32 = 1 << 1;
/// `MEM_OP_MAX_SIZE`: the largest `size` of a non-SIDA memop (§2.1, §3.2).
pub const MEM_OP_MAX_SIZE: u32 = 65536;

/// Op 0: logical read (vCPU).
pub const KVM_S390_MEMOP_LOGICAL_READ: u32 = 0;
/// Op 1: logical write (vCPU).
pub const KVM_S390_MEMOP_LOGICAL_WRITE: u32 = 1;
/// Op 2: SIDA read (protected vCPU).
pub const KVM_S390_MEMOP_SIDA_READ: u32 = 2;
/// Op 3: SIDA write (protected vCPU).
pub const KVM_S390_MEMOP_SIDA_WRITE: u32 = 3;
/// Op 4: absolute read (VM).
pub const KVM_S390_MEMOP_ABSOLUTE_READ: u32 = 4;
/// Op 5: absolute write (VM).
pub const KVM_S390_MEMOP_ABSOLUTE_WRITE: u32 = 5;
/// Op 6: absolute compare-and-exchange (VM).
pub const KVM_S390_MEMOP_ABSOLUTE_CMPXCHG: u32 = 6;

/// Flag: check the access only, move no data.
pub const KVM_S390_MEMOP_F_CHECK_ONLY: u64 = 1 << 0;
/// Flag: inject the program interruption of a failing logical access.
pub const KVM_S390_MEMOP_F_INJECT_EXCEPTION: u64 = 1 << 1;
/// Flag: apply key-controlled protection with the `key` field.
pub const KVM_S390_MEMOP_F_SKEY_PROTECTION: u64 = 1 << 2;

/// `KVM_S390_GET_SKEYS` result while the guest uses no storage keys (§10.1).
pub const KVM_S390_GET_SKEYS_NONE: i32 = 1;
/// Largest `count` of `KVM_S390_GET_SKEYS` / `KVM_S390_SET_SKEYS`.
pub const KVM_S390_SKEYS_MAX: u64 = 1_048_576;

/// `KVM_S390_KEYOP` operation: INSERT STORAGE KEY EXTENDED.
pub const KVM_S390_KEYOP_ISKE: u8 = 1;
/// `KVM_S390_KEYOP` operation: RESET REFERENCE BIT EXTENDED.
pub const KVM_S390_KEYOP_RRBE: u8 = 2;
/// `KVM_S390_KEYOP` operation: SET STORAGE KEY EXTENDED.
pub const KVM_S390_KEYOP_SSKE: u8 = 3;

/// `kvm_s390_pgm_info.flags`: the ILC bits are valid.
pub const KVM_S390_PGM_FLAGS_ILC_VALID: u8 = 0x01;
/// `kvm_s390_pgm_info.flags`: the ILC (instruction length 0, 2, 4 or 6).
pub const KVM_S390_PGM_FLAGS_ILC_MASK: u8 = 0x06;
/// `kvm_s390_pgm_info.flags`: do not rewind the PSW of a nullifying exception.
pub const KVM_S390_PGM_FLAGS_NO_REWIND: u8 = 0x08;

/// Mirror of `struct kvm_s390_mem_op` (§2.2): 64 bytes, 8-byte aligned, big-endian
/// fields (see the module documentation). Bytes 32..63 are the union of
/// `{ ar, key, pad1[6], old_addr }`, `sida_offset` and `reserved[32]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C, align(8))]
pub struct KvmS390MemOp {
    gaddr: U64,
    flags: U64,
    size: U32,
    op: U32,
    buf: U64,
    union: [u8; 32],
}

const _: () = assert!(core::mem::size_of::<KvmS390MemOp>() == 64);
const _: () = assert!(core::mem::align_of::<KvmS390MemOp>() == 8);

impl Default for KvmS390MemOp {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

impl KvmS390MemOp {
    /// An all-zero struct with the given op, guest address and size.
    pub fn new(op: u32, gaddr: u64, size: u32) -> Self {
        let mut m = Self::new_zeroed();
        m.set_op(op);
        m.set_gaddr(gaddr);
        m.set_size(size);
        m
    }

    /// The struct as it lies in s390 memory (big-endian, 64 bytes).
    pub fn from_be_bytes(bytes: &[u8; 64]) -> Self {
        // Every 64-byte pattern is a valid value; the alignment is provided by the copy.
        Self::read_from_bytes(bytes).unwrap_or_default()
    }

    /// The s390 memory image of the struct.
    pub fn to_be_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.as_bytes());
        out
    }

    /// `gaddr`: the guest address (logical for ops 0/1, absolute for 4/5/6).
    pub fn gaddr(&self) -> u64 {
        self.gaddr.get()
    }
    /// Set `gaddr`.
    pub fn set_gaddr(&mut self, v: u64) {
        self.gaddr.set(v);
    }
    /// `flags`.
    pub fn flags(&self) -> u64 {
        self.flags.get()
    }
    /// Set `flags`.
    pub fn set_flags(&mut self, v: u64) {
        self.flags.set(v);
    }
    /// `size`: the byte count.
    pub fn size(&self) -> u32 {
        self.size.get()
    }
    /// Set `size`.
    pub fn set_size(&mut self, v: u32) {
        self.size.set(v);
    }
    /// `op`: the operation.
    pub fn op(&self) -> u32 {
        self.op.get()
    }
    /// Set `op`.
    pub fn set_op(&mut self, v: u32) {
        self.op.set(v);
    }
    /// `buf`: the user buffer address. The model does not dereference it: the user
    /// memory is passed separately ([`super::UserMemory`]).
    pub fn buf(&self) -> u64 {
        self.buf.get()
    }
    /// Set `buf`.
    pub fn set_buf(&mut self, v: u64) {
        self.buf.set(v);
    }

    /// `ar` (union member A, byte 32): the access-register number.
    pub fn ar(&self) -> u8 {
        self.union[0]
    }
    /// Set `ar`.
    pub fn set_ar(&mut self, v: u8) {
        self.union[0] = v;
    }
    /// `key` (union member A, byte 33): the access key.
    pub fn key(&self) -> u8 {
        self.union[1]
    }
    /// Set `key`.
    pub fn set_key(&mut self, v: u8) {
        self.union[1] = v;
    }
    /// `pad1[6]` (union member A, bytes 34..39); never looked at.
    pub fn pad1(&self) -> [u8; 6] {
        let mut p = [0u8; 6];
        p.copy_from_slice(&self.union[2..8]);
        p
    }
    /// `old_addr` (union member A, bytes 40..47): the address of cmpxchg's old value.
    /// Like `buf`, the model does not dereference it.
    pub fn old_addr(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.union[8..16]);
        u64::from_be_bytes(b)
    }
    /// Set `old_addr`.
    pub fn set_old_addr(&mut self, v: u64) {
        self.union[8..16].copy_from_slice(&v.to_be_bytes());
    }
    /// `sida_offset` (union member B, bytes 32..35, big-endian): overlays `ar` (its
    /// most significant byte), `key` and `pad1[0..2]`.
    pub fn sida_offset(&self) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.union[..4]);
        u32::from_be_bytes(b)
    }
    /// Set `sida_offset` (rewrites `ar`, `key`, `pad1[0..2]`).
    pub fn set_sida_offset(&mut self, v: u32) {
        self.union[..4].copy_from_slice(&v.to_be_bytes());
    }
    /// `reserved[32]` (union member C): the union's raw bytes.
    pub fn reserved(&self) -> [u8; 32] {
        self.union
    }
    /// Set the union's raw bytes (rewrites every other union member).
    pub fn set_reserved(&mut self, v: [u8; 32]) {
        self.union = v;
    }
}

impl core::fmt::Debug for KvmS390MemOp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KvmS390MemOp")
            .field("gaddr", &format_args!("{:#x}", self.gaddr()))
            .field("flags", &format_args!("{:#x}", self.flags()))
            .field("size", &self.size())
            .field("op", &self.op())
            .field("buf", &format_args!("{:#x}", self.buf()))
            .field("ar", &self.ar())
            .field("key", &self.key())
            .field("old_addr", &format_args!("{:#x}", self.old_addr()))
            .field("sida_offset", &format_args!("{:#x}", self.sida_offset()))
            .finish()
    }
}

/// Mirror of `struct kvm_s390_skeys` (64 bytes, big-endian fields): the argument of
/// `KVM_S390_GET_SKEYS` and `KVM_S390_SET_SKEYS`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C, align(8))]
pub struct KvmS390Skeys {
    start_gfn: U64,
    count: U64,
    skeydata_addr: U64,
    flags: U32,
    reserved: [U32; 9],
}

const _: () = assert!(core::mem::size_of::<KvmS390Skeys>() == 64);

impl Default for KvmS390Skeys {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

impl KvmS390Skeys {
    /// `count` frames from frame number `start_gfn`, flags 0.
    pub fn new(start_gfn: u64, count: u64) -> Self {
        let mut s = Self::new_zeroed();
        s.start_gfn.set(start_gfn);
        s.count.set(count);
        s
    }
    /// The first guest frame number.
    pub fn start_gfn(&self) -> u64 {
        self.start_gfn.get()
    }
    /// The number of frames.
    pub fn count(&self) -> u64 {
        self.count.get()
    }
    /// The user buffer address (not dereferenced by the model).
    pub fn skeydata_addr(&self) -> u64 {
        self.skeydata_addr.get()
    }
    /// Set the user buffer address.
    pub fn set_skeydata_addr(&mut self, v: u64) {
        self.skeydata_addr.set(v);
    }
    /// `flags`; must be 0.
    pub fn flags(&self) -> u32 {
        self.flags.get()
    }
    /// Set `flags`.
    pub fn set_flags(&mut self, v: u32) {
        self.flags.set(v);
    }
}

impl core::fmt::Debug for KvmS390Skeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KvmS390Skeys")
            .field("start_gfn", &format_args!("{:#x}", self.start_gfn()))
            .field("count", &self.count())
            .field("flags", &self.flags())
            .finish()
    }
}

/// Mirror of `struct kvm_s390_keyop` (16 bytes): the in/out argument of
/// `KVM_S390_KEYOP`.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C, align(8))]
pub struct KvmS390Keyop {
    guest_addr: U64,
    /// The key byte: the new key for SSKE (in), the result (out).
    pub key: u8,
    /// The operation ([`KVM_S390_KEYOP_ISKE`], [`KVM_S390_KEYOP_RRBE`],
    /// [`KVM_S390_KEYOP_SSKE`]).
    pub operation: u8,
    pad: [u8; 6],
}

const _: () = assert!(core::mem::size_of::<KvmS390Keyop>() == 16);

impl KvmS390Keyop {
    /// An operation on the frame holding `guest_addr` with key byte `key`.
    pub fn new(operation: u8, guest_addr: u64, key: u8) -> Self {
        Self {
            guest_addr: U64::new(guest_addr),
            key,
            operation,
            pad: [0; 6],
        }
    }
    /// The guest absolute address.
    pub fn guest_addr(&self) -> u64 {
        self.guest_addr.get()
    }
}

impl core::fmt::Debug for KvmS390Keyop {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KvmS390Keyop")
            .field("guest_addr", &format_args!("{:#x}", self.guest_addr()))
            .field("key", &format_args!("{:#04x}", self.key))
            .field("operation", &self.operation)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // §2.2: field offsets in the s390 memory image.
    #[test]
    fn layout_is_big_endian_and_at_the_documented_offsets() {
        let mut m = KvmS390MemOp::new(6, 0x0102_0304_0506_0708, 0x1112_1314);
        m.set_flags(0x2122_2324_2526_2728);
        m.set_buf(0x3132_3334_3536_3738);
        m.set_ar(0x41);
        m.set_key(0x42);
        m.set_old_addr(0x5152_5354_5556_5758);
        let b = m.to_be_bytes();
        assert_eq!(b[0..8], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(b[8..16], [0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28]);
        assert_eq!(b[16..20], [0x11, 0x12, 0x13, 0x14]);
        assert_eq!(b[20..24], [0, 0, 0, 6]);
        assert_eq!(b[24..32], [0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38]);
        assert_eq!(b[32..34], [0x41, 0x42]);
        assert_eq!(b[40..48], [0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58]);
        assert_eq!(KvmS390MemOp::from_be_bytes(&b), m);
    }

    // §2.2: sida_offset overlays ar (most significant byte) and key.
    #[test]
    fn sida_offset_overlays_ar_and_key() {
        let mut m = KvmS390MemOp::default();
        m.set_ar(0x12);
        m.set_key(0x34);
        assert_eq!(m.sida_offset(), 0x1234_0000);
        m.set_sida_offset(0x0000_01C0);
        assert_eq!((m.ar(), m.key()), (0, 0));
        assert_eq!(m.pad1()[..2], [0x01, 0xC0]);
    }
}
