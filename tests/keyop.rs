//! The Linux selftest `s390/keyop.c` (selftest-cases.md §4, KEYOP-00 to KEYOP-04, each
//! for the five fault-in locations) and the error paths of `KVM_S390_GET_SKEYS`,
//! `KVM_S390_SET_SKEYS` and `KVM_S390_KEYOP` (§10.1, §13.1).

use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::keys::StorageKey;
use s390_gaccess::memop::abi::{
    KVM_S390_GET_SKEYS, KVM_S390_GET_SKEYS_NONE, KVM_S390_KEYOP, KVM_S390_KEYOP_ISKE,
    KVM_S390_KEYOP_RRBE, KVM_S390_KEYOP_SSKE, KVM_S390_SET_SKEYS, KVM_S390_SKEYS_MAX, KvmS390Keyop,
    KvmS390Skeys,
};
use s390_gaccess::memop::{UserBuffer, get_skeys, keyop, set_skeys};
use s390_gaccess::vm::Vm;

const EINVAL: i32 = -22;
const EFAULT: i32 = -14;
const BUF_PAGES: u64 = 128;
const GUEST_PAGES: u64 = 256;
const BUF_START_GFN: u64 = GUEST_PAGES - BUF_PAGES;
const BUF_START_ADDR: u64 = BUF_START_GFN << 12;
/// KVM_S390_VCPU_FAULT locations 0..4; the model has nothing to fault in, so every
/// location must give the same results.
const FAULT_IN_LOCATIONS: u32 = 5;

/// `vm_create_barebones` plus one memslot of 256 pages at 0.
fn new_vm() -> Vm {
    Vm::with_memory(GUEST_PAGES << 12).unwrap()
}

fn args() -> KvmS390Skeys {
    KvmS390Skeys::new(BUF_START_GFN, BUF_PAGES)
}

fn get(vm: &Vm) -> Vec<u8> {
    let mut keys = vec![0u8; BUF_PAGES as usize];
    assert_eq!(get_skeys(vm, &args(), &mut UserBuffer::valid(&mut keys)), 0);
    keys
}

fn set(vm: &Vm, keys: &[u8]) {
    let mut k = keys.to_vec();
    assert_eq!(set_skeys(vm, &args(), &UserBuffer::valid(&mut k)), 0);
}

/// `do_keyop`: returns 0 and a key byte whose bit 7 (0x01) is 0.
fn do_keyop(vm: &Vm, op: u8, page: u64, key: u8) -> u8 {
    let mut kop = KvmS390Keyop::new(op, BUF_START_ADDR + page * 4096, key);
    assert_eq!(keyop(vm, &mut kop), 0);
    assert_eq!(kop.key & 1, 0, "last bit of the key is 0");
    kop.key
}

fn pattern() -> Vec<u8> {
    (0..BUF_PAGES).map(|i| (i << 1) as u8).collect()
}

/// `run_test`: KEYOP-00 on a fresh VM, then the test.
fn run_test(test: fn(&Vm)) {
    for _fault_in in 0..FAULT_IN_LOCATIONS {
        let vm = new_vm();
        // KEYOP-00: storage keys are not enabled initially.
        let mut tmp = vec![0u8; BUF_PAGES as usize];
        let r = get_skeys(&vm, &args(), &mut UserBuffer::valid(&mut tmp));
        assert_eq!(r, KVM_S390_GET_SKEYS_NONE);
        test(&vm);
    }
}

/// KEYOP-00: GET_SKEYS answers KVM_S390_GET_SKEYS_NONE while no keys are in use.
#[test]
fn keyop_00_keys_not_enabled_initially() {
    run_test(|_| {});
}

/// KEYOP-01 Initialization: SET_SKEYS zeros, then the pattern; GET_SKEYS reads each
/// back.
#[test]
fn keyop_01_initialization() {
    run_test(|vm| {
        set(vm, &[0; BUF_PAGES as usize]);
        assert_eq!(get(vm), vec![0; BUF_PAGES as usize]);
        set(vm, &pattern());
        assert_eq!(get(vm), pattern());
    });
}

/// KEYOP-02 RRBE: returns the old R and C bits only; afterwards only R is cleared.
#[test]
fn keyop_02_rrbe() {
    run_test(|vm| {
        let expected = pattern();
        set(vm, &expected);
        for (i, &e) in expected.iter().enumerate() {
            assert_eq!(do_keyop(vm, KVM_S390_KEYOP_RRBE, i as u64, 0xFF), e & 0x06);
        }
        let cleared: Vec<u8> = expected.iter().map(|k| k & !0x04).collect();
        assert_eq!(get(vm), cleared);
    });
}

/// KEYOP-03 ISKE: returns the key; nothing changes.
#[test]
fn keyop_03_iske() {
    run_test(|vm| {
        let expected = pattern();
        set(vm, &expected);
        let got: Vec<u8> = (0..BUF_PAGES)
            .map(|i| do_keyop(vm, KVM_S390_KEYOP_ISKE, i, 0xFF))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(get(vm), expected);
    });
}

/// KEYOP-04 SSKE: sets the bit inversion of the old key (low bit given as 1 and
/// dropped) and returns the old key.
#[test]
fn keyop_04_sske() {
    run_test(|vm| {
        let tmp = pattern();
        set(vm, &tmp);
        let expected: Vec<u8> = tmp.iter().map(|t| !t & 0xFE).collect();
        let old: Vec<u8> = (0..BUF_PAGES)
            .map(|i| do_keyop(vm, KVM_S390_KEYOP_SSKE, i, expected[i as usize] | 1))
            .collect();
        assert_eq!(old, tmp);
        assert_eq!(get(vm), expected);
    });
}

/// The ioctl numbers of the storage-key ioctls.
#[test]
fn ioctl_numbers() {
    assert_eq!(KVM_S390_GET_SKEYS, 0x4040_AEB2);
    assert_eq!(KVM_S390_SET_SKEYS, 0x4040_AEB3);
    assert_eq!(KVM_S390_KEYOP, 0xC010_AE53);
    assert_eq!(std::mem::size_of::<KvmS390Skeys>(), 64);
    assert_eq!(std::mem::size_of::<KvmS390Keyop>(), 16);
}

/// GET_SKEYS order: flags → keys in use → count → frames → copy-out.
#[test]
fn get_skeys_errors() {
    let vm = new_vm();
    let mut buf = vec![0xAAu8; 300];
    let mut user = UserBuffer::valid(&mut buf);
    let mut a = KvmS390Skeys::new(0, 0);
    a.set_flags(1);
    assert_eq!(get_skeys(&vm, &a, &mut user), EINVAL, "flags first");
    let a = KvmS390Skeys::new(0, 0);
    assert_eq!(
        get_skeys(&vm, &a, &mut user),
        1,
        "NONE before the count check"
    );
    vm.enable_keys();
    assert_eq!(get_skeys(&vm, &a, &mut user), EINVAL, "count 0");
    let a = KvmS390Skeys::new(0, KVM_S390_SKEYS_MAX + 1);
    assert_eq!(get_skeys(&vm, &a, &mut user), EINVAL);
    let a = KvmS390Skeys::new(0, KVM_S390_SKEYS_MAX);
    assert_eq!(
        get_skeys(&vm, &a, &mut user),
        EFAULT,
        "frames beyond memory"
    );
    for start in [255, 256, u64::MAX, 1 << 52, (1 << 52) - 1] {
        let a = KvmS390Skeys::new(start, 2);
        assert_eq!(get_skeys(&vm, &a, &mut user), EFAULT, "start {start:#x}");
    }
    assert!(buf.iter().all(|&b| b == 0xAA), "nothing copied on failure");
    let a = KvmS390Skeys::new(0, 256);
    assert_eq!(get_skeys(&vm, &a, &mut UserBuffer::Null), EFAULT);
    assert_eq!(
        get_skeys(&vm, &a, &mut UserBuffer::valid(&mut [0u8; 255])),
        EFAULT
    );
    assert_eq!(
        get_skeys(&vm, &a, &mut UserBuffer::valid(&mut [0u8; 256])),
        0
    );
}

/// SET_SKEYS order: flags → count → copy-in → keys put in use → reserved bit (no
/// key set) → frames (earlier frames set).
#[test]
fn set_skeys_errors() {
    let vm = new_vm();
    vm.set_storage_key(AbsoluteAddress(0x5000), StorageKey(0x50))
        .unwrap();
    let mut a = KvmS390Skeys::new(0, 1);
    a.set_flags(2);
    assert_eq!(set_skeys(&vm, &a, &UserBuffer::valid(&mut [0u8])), EINVAL);
    let a = KvmS390Skeys::new(0, 0);
    assert_eq!(set_skeys(&vm, &a, &UserBuffer::valid(&mut [0u8])), EINVAL);
    let a = KvmS390Skeys::new(0, 4);
    assert_eq!(set_skeys(&vm, &a, &UserBuffer::Null), EFAULT);
    assert!(!vm.keys_in_use(), "the copy comes before enabling keys");
    assert_eq!(
        set_skeys(&vm, &a, &UserBuffer::valid(&mut [0x10, 0x20, 0x31, 0x40])),
        EINVAL
    );
    assert!(
        vm.keys_in_use(),
        "keys are enabled before the reserved-bit check"
    );
    assert_eq!(
        vm.storage_key(AbsoluteAddress(0)).unwrap(),
        StorageKey(0),
        "nothing set"
    );
    assert_eq!(
        vm.storage_key(AbsoluteAddress(0x5000)).unwrap(),
        StorageKey(0),
        "reset"
    );
    let a = KvmS390Skeys::new(254, 3);
    assert_eq!(
        set_skeys(&vm, &a, &UserBuffer::valid(&mut [0x10, 0x20, 0x30])),
        EFAULT
    );
    assert_eq!(
        vm.storage_key(AbsoluteAddress(254 << 12)).unwrap(),
        StorageKey(0x10)
    );
    assert_eq!(
        vm.storage_key(AbsoluteAddress(255 << 12)).unwrap(),
        StorageKey(0x20)
    );
    let a = KvmS390Skeys::new(1 << 52, 1);
    assert_eq!(set_skeys(&vm, &a, &UserBuffer::valid(&mut [0x70])), EFAULT);
    assert_eq!(
        vm.storage_key(AbsoluteAddress(0)).unwrap(),
        StorageKey(0),
        "no wrap to 0"
    );
}

/// KEYOP: an unknown operation is -EINVAL before the address is looked at; a frame
/// outside memory is -EFAULT (§13.1) with the struct unchanged; KEYOP does not put
/// keys in use.
#[test]
fn keyop_errors_and_key_state() {
    let vm = new_vm();
    for op in [0u8, 4, 0x80, 0xFF] {
        let mut kop = KvmS390Keyop::new(op, u64::MAX, 0x10);
        assert_eq!(keyop(&vm, &mut kop), EINVAL, "op {op}");
    }
    for op in [
        KVM_S390_KEYOP_ISKE,
        KVM_S390_KEYOP_RRBE,
        KVM_S390_KEYOP_SSKE,
    ] {
        let mut kop = KvmS390Keyop::new(op, GUEST_PAGES << 12, 0x10);
        assert_eq!(keyop(&vm, &mut kop), EFAULT);
        assert_eq!(kop.key, 0x10);
    }
    assert_eq!(do_keyop(&vm, KVM_S390_KEYOP_SSKE, 0, 0x36), 0);
    assert_eq!(
        do_keyop(&vm, KVM_S390_KEYOP_ISKE, 0, 0),
        0x36,
        "SSKE sets ACC, F, R, C"
    );
    let mut keys = vec![0u8; 128];
    assert_eq!(
        get_skeys(&vm, &args(), &mut UserBuffer::valid(&mut keys)),
        KVM_S390_GET_SKEYS_NONE
    );
}
