//! The storage-key ioctls of the VM fd: `KVM_S390_GET_SKEYS`, `KVM_S390_SET_SKEYS`
//! (`kvm_s390_get_skeys` / `kvm_s390_set_skeys`) and `KVM_S390_KEYOP`
//! (`kvm_s390_keyop`, 2026), §10, §13.1, selftest-cases.md §4.
//!
//! Frames outside guest memory give -EFAULT everywhere. (The first new-gmap kernels
//! let the walk's PGM 5 leak out as a positive value; the fix "Return -EFAULT instead
//! of PGM_ADDRESSING" restores -EFAULT for GET/SET_SKEYS, and this project chooses
//! -EFAULT for KEYOP too, §13.1.)
#![forbid(unsafe_code)]

use super::abi::{
    KVM_S390_GET_SKEYS_NONE, KVM_S390_KEYOP_ISKE, KVM_S390_KEYOP_RRBE, KVM_S390_KEYOP_SSKE,
    KVM_S390_SKEYS_MAX, KvmS390Keyop, KvmS390Skeys,
};
use super::user::UserBuffer;
use crate::addr::{AbsoluteAddress, PAGE_SIZE};
use crate::exception::Errno;
use crate::keys::StorageKey;
use crate::vm::Vm;

/// The highest frame number whose address fits in 64 bits.
const MAX_GFN: u64 = u64::MAX / PAGE_SIZE;

/// The absolute address of frame `start_gfn + i` (u64 arithmetic like `gfn_t`), or
/// `None` when that frame number has no 64-bit address (and so is outside memory).
fn frame_address(start_gfn: u64, i: u64) -> Option<AbsoluteAddress> {
    let gfn = start_gfn.wrapping_add(i);
    (gfn <= MAX_GFN).then(|| AbsoluteAddress(gfn * PAGE_SIZE))
}

/// The checks both skeys ioctls start with: flags must be 0, and (after the
/// keys-in-use check of GET) `count` must be 1..=`KVM_S390_SKEYS_MAX`.
fn count_ok(args: &KvmS390Skeys) -> Result<usize, Errno> {
    if (1..=KVM_S390_SKEYS_MAX).contains(&args.count()) {
        Ok(args.count() as usize)
    } else {
        Err(Errno::Einval)
    }
}

/// `KVM_S390_GET_SKEYS`: copy `count` key bytes from frame `start_gfn` on into `user`.
///
/// Order: flags ≠ 0 → -EINVAL; keys not in use → [`KVM_S390_GET_SKEYS_NONE`] (1);
/// count outside 1..=1048576 → -EINVAL; a frame outside memory → -EFAULT (nothing
/// copied); the copy to `user` failing → -EFAULT; else 0. Reading keys changes none.
pub fn get_skeys(vm: &Vm, args: &KvmS390Skeys, user: &mut UserBuffer<'_>) -> i32 {
    if args.flags() != 0 {
        return Errno::Einval.ret();
    }
    if !vm.keys_in_use() {
        return KVM_S390_GET_SKEYS_NONE;
    }
    let count = match count_ok(args) {
        Ok(c) => c,
        Err(e) => return e.ret(),
    };
    let mut keys = Vec::with_capacity(count);
    for i in 0..count as u64 {
        let key = frame_address(args.start_gfn(), i).and_then(|a| vm.storage_key(a).ok());
        match key {
            Some(k) => keys.push(k.0),
            None => return Errno::Efault.ret(),
        }
    }
    match user.copy_to(&keys) {
        Ok(()) => 0,
        Err(e) => e.ret(),
    }
}

/// `KVM_S390_SET_SKEYS`: set `count` key bytes from `user` on the frames from
/// `start_gfn` on.
///
/// Order: flags ≠ 0 → -EINVAL; count outside 1..=1048576 → -EINVAL; the copy from
/// `user` failing → -EFAULT; **keys are put in use** ([`Vm::enable_keys`]: the first
/// time every key is reset to 0, §10.1); any byte with bit 7 (0x01) set → -EINVAL with
/// no key set; then frame by frame, a frame outside memory → -EFAULT with the earlier
/// frames already set; else 0.
pub fn set_skeys(vm: &Vm, args: &KvmS390Skeys, user: &UserBuffer<'_>) -> i32 {
    if args.flags() != 0 {
        return Errno::Einval.ret();
    }
    let count = match count_ok(args) {
        Ok(c) => c,
        Err(e) => return e.ret(),
    };
    let keys = match user.copy_from(count) {
        Ok(k) => k,
        Err(e) => return e.ret(),
    };
    vm.enable_keys();
    // The lowest-order bit of a key byte is reserved.
    if keys.iter().any(|k| k & 0x01 != 0) {
        return Errno::Einval.ret();
    }
    for (i, &k) in keys.iter().enumerate() {
        let set = frame_address(args.start_gfn(), i as u64)
            .and_then(|a| vm.set_storage_key(a, StorageKey(k)).ok());
        if set.is_none() {
            return Errno::Efault.ret();
        }
    }
    0
}

/// `KVM_S390_KEYOP` (selftest-cases.md §4, §13.1): one storage-key instruction on the
/// frame holding `kop.guest_addr`; the result goes to `kop.key` and the ioctl returns
/// 0.
///
/// * ISKE: `key` := the frame's key byte; nothing changes.
/// * RRBE: clear the frame's R bit; `key` := the old R and C bits (mask 0x06), all
///   else 0.
/// * SSKE: set the frame's key to `key` without its reserved low-order bit (ACC, F, R
///   and C all come from the operand); `key` := the old key byte.
///
/// Any other operation → -EINVAL (checked first); a frame outside memory → -EFAULT
/// with `kop` unchanged. KEYOP does not put keys in use (§13.1).
pub fn keyop(vm: &Vm, kop: &mut KvmS390Keyop) -> i32 {
    let a = AbsoluteAddress(kop.guest_addr());
    let old = match kop.operation {
        KVM_S390_KEYOP_ISKE => vm.storage_key(a).map(|k| k.0),
        KVM_S390_KEYOP_RRBE => vm
            .storage()
            .update_key(a, |k| k & !StorageKey::REFERENCE)
            .map(|k| k.0 & (StorageKey::REFERENCE | StorageKey::CHANGE)),
        KVM_S390_KEYOP_SSKE => {
            let new = kop.key;
            vm.storage().update_key(a, |_| new).map(|k| k.0)
        }
        _ => return Errno::Einval.ret(),
    };
    match old {
        Ok(k) => {
            kop.key = k;
            0
        }
        Err(_) => Errno::Efault.ret(),
    }
}
