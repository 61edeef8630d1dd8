//! INJECT_EXCEPTION (§3.11) and the delivery of the queued program interruption into
//! the lowcore (§9.5, §13.1): ILC from the last intercept, PER merge, the fields
//! stored per code, PSW rewind, R/C on the lowcore frame, lowcore outside memory.

use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::exception::{PgmInfo, Teid};
use s390_gaccess::keys::StorageKey;
use s390_gaccess::memop::abi::{KVM_S390_PGM_FLAGS_ILC_VALID, KVM_S390_PGM_FLAGS_NO_REWIND};
use s390_gaccess::memop::{
    Delivery, MemOp, deliver_pending, deliver_program_interruption, icpt,
    inject_program_interruption, lowcore,
};
use s390_gaccess::vcpu::{Psw, SieIntercept, Vcpu};
use s390_gaccess::vm::Vm;

const PREFIX: u32 = 0x6000;
const NEW_PSW: Psw = Psw {
    mask: 0x0000_0001_8000_0000,
    addr: 0x4242,
};
const OLD_PSW: Psw = Psw {
    mask: 0x0000_0001_8000_0000,
    addr: 0x1000,
};

/// A DAT-off guest with the prefix at 0x6000, a program-new PSW installed, the
/// lowcore's code-specific fields pre-filled with 0xFF, the last intercept an
/// instruction intercept of a 4-byte instruction (0xB2xx).
fn setup() -> (Vm, Vcpu) {
    let vm = Vm::with_memory(0x10000).unwrap();
    let lc = PREFIX as u64;
    vm.storage()
        .write(AbsoluteAddress(lc + 140), &[0xFF; 0x30])
        .unwrap();
    vm.storage()
        .write_u64(AbsoluteAddress(lc + lowcore::PGM_NEW_PSW), NEW_PSW.mask)
        .unwrap();
    vm.storage()
        .write_u64(AbsoluteAddress(lc + lowcore::PGM_NEW_PSW + 8), NEW_PSW.addr)
        .unwrap();
    let mut vcpu = Vcpu::new();
    vcpu.prefix = PREFIX;
    vcpu.psw = OLD_PSW;
    vcpu.intercept = SieIntercept {
        icptcode: icpt::INST,
        ipa: 0xB22B,
        icptstatus: 0,
        pgmilc: 0,
    };
    (vm, vcpu)
}

fn lc(vm: &Vm, offset: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    vm.storage()
        .read(AbsoluteAddress(PREFIX as u64 + offset), &mut b)
        .unwrap();
    b
}

fn lc_u64(vm: &Vm, offset: u64) -> u64 {
    vm.storage()
        .read_u64(AbsoluteAddress(PREFIX as u64 + offset))
        .unwrap()
}

/// §9.5: a protection exception injected by a memop and delivered: TEID @168 and
/// exception access id @160 (not the operand access id), ILC @140 from the
/// intercept, breaking-event address @272, code @142, old PSW @336 (not rewound),
/// new PSW from @464.
#[test]
fn s9_5_protection_delivery() {
    let (vm, mut vcpu) = setup();
    vcpu.cr[0] |= 0x1000_0000; // LAP
    let r = MemOp::logical_write(0x80, vec![1; 4])
        .ar(7)
        .inject()
        .run_vcpu(&vm, &mut vcpu);
    assert_eq!(r.ret, 4);
    let pending = vcpu.pending_pgm.expect("queued");
    assert_eq!(pending.flags, KVM_S390_PGM_FLAGS_ILC_VALID | 4);
    assert_eq!(
        deliver_program_interruption(&vm, &mut vcpu),
        Delivery::Delivered
    );
    assert_eq!(vcpu.pending_pgm, None);
    assert_eq!(lc_u64(&vm, lowcore::TRANS_EXC_CODE), 0x400 | Teid::B56);
    assert_eq!(lc(&vm, lowcore::EXC_ACCESS_ID, 3), [7, 0xFF, 0xFF]);
    assert_eq!(lc(&vm, lowcore::PGM_ILC, 4), [0, 4, 0, 4]);
    assert_eq!(lc_u64(&vm, lowcore::PGM_LAST_BREAK), 1);
    assert_eq!(lc_u64(&vm, lowcore::PGM_OLD_PSW), OLD_PSW.mask);
    assert_eq!(lc_u64(&vm, lowcore::PGM_OLD_PSW + 8), OLD_PSW.addr);
    assert_eq!(vcpu.psw, NEW_PSW);
    // §13.1: the stores set R and C on the lowcore frame.
    let k = vm.storage_key(AbsoluteAddress(PREFIX as u64)).unwrap();
    assert!(k.referenced() && k.changed());
}

/// §9.5: translation exceptions are nullifying: the PSW is rewound by the ILC before
/// the old PSW is stored; TEID, exception and operand access ids are stored.
#[test]
fn s9_5_nullifying_rewinds_the_psw() {
    let (vm, mut vcpu) = setup();
    vcpu.psw.mask |= Psw::DAT;
    vcpu.cr[1] = 0x8000 | 0x0C; // region-first ASCE TL 0 over a zero table
    let r = MemOp::logical_read(0xC000_0000_0000_0000, 4)
        .ar(2)
        .inject()
        .run_vcpu(&vm, &mut vcpu);
    assert_eq!(r.ret, 0x39, "RFX01 3 > TL 0");
    assert!(deliver_pending(&vm, &mut vcpu));
    assert_eq!(lc_u64(&vm, lowcore::TRANS_EXC_CODE), 0xC000_0000_0000_0800);
    assert_eq!(lc(&vm, lowcore::EXC_ACCESS_ID, 3), [2, 0xFF, 0]);
    assert_eq!(lc_u64(&vm, lowcore::PGM_OLD_PSW + 8), OLD_PSW.addr - 4);
}

/// §9.5: NO_REWIND keeps the PSW of a nullifying code; the 31-bit wrap of the rewind.
#[test]
fn s9_5_no_rewind_and_wrap() {
    let (vm, mut vcpu) = setup();
    let pgm = PgmInfo {
        code: 0x11,
        flags: KVM_S390_PGM_FLAGS_ILC_VALID | KVM_S390_PGM_FLAGS_NO_REWIND | 6,
        ..Default::default()
    };
    inject_program_interruption(&mut vcpu, pgm);
    assert!(deliver_pending(&vm, &mut vcpu));
    assert_eq!(lc_u64(&vm, lowcore::PGM_OLD_PSW + 8), OLD_PSW.addr);
    assert_eq!(lc(&vm, lowcore::PGM_ILC, 2), [0, 6]);

    let (vm, mut vcpu) = setup();
    vcpu.psw = Psw {
        mask: Psw::BA,
        addr: 2,
    };
    inject_program_interruption(
        &mut vcpu,
        PgmInfo {
            code: 0x10,
            ..Default::default()
        },
    );
    assert!(deliver_pending(&vm, &mut vcpu));
    assert_eq!(lc_u64(&vm, lowcore::PGM_OLD_PSW + 8), 0x7FFF_FFFE);
}

/// §9.5: codes 5, 0x12 and 0x28 store nothing code-specific and do not rewind.
#[test]
fn s9_5_codes_without_specific_fields() {
    for code in [0x05, 0x12, 0x28] {
        let (vm, mut vcpu) = setup();
        inject_program_interruption(
            &mut vcpu,
            PgmInfo {
                code,
                ..Default::default()
            },
        );
        assert!(deliver_pending(&vm, &mut vcpu));
        assert_eq!(
            lc(&vm, lowcore::EXC_ACCESS_ID, 16),
            [0xFF; 16].to_vec(),
            "code {code:#x}"
        );
        assert_eq!(lc(&vm, lowcore::PGM_CODE, 2), [0, code as u8]);
        assert_eq!(lc_u64(&vm, lowcore::PGM_OLD_PSW + 8), OLD_PSW.addr);
    }
}

/// §9.5: AR-translation codes store the exception access id only and nullify.
#[test]
fn s9_5_access_register_codes() {
    for code in [0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2F] {
        let (vm, mut vcpu) = setup();
        let pgm = PgmInfo {
            code,
            exc_access_id: 9,
            teid: Teid(0x1234),
            ..Default::default()
        };
        inject_program_interruption(&mut vcpu, pgm);
        assert!(deliver_pending(&vm, &mut vcpu));
        assert_eq!(lc(&vm, lowcore::EXC_ACCESS_ID, 3), [9, 0xFF, 0xFF]);
        assert_eq!(lc(&vm, lowcore::TRANS_EXC_CODE, 8), [0xFF; 8]);
        assert_eq!(lc_u64(&vm, lowcore::PGM_OLD_PSW + 8), OLD_PSW.addr - 4);
    }
}

/// §9.5 `kvm_s390_get_ilen`: the ILC at delivery comes from the intercept at
/// injection time; an ILC given as valid is kept.
#[test]
fn s9_5_ilc_sources() {
    let cases = [
        (
            SieIntercept {
                icptcode: icpt::PROGI,
                ipa: 0,
                icptstatus: 0,
                pgmilc: 2,
            },
            2,
        ),
        (
            SieIntercept {
                icptcode: icpt::INST,
                ipa: 0xE300,
                icptstatus: 0,
                pgmilc: 0,
            },
            6,
        ),
        (
            SieIntercept {
                icptcode: icpt::INST,
                ipa: 0x0A00,
                icptstatus: 0,
                pgmilc: 0,
            },
            2,
        ),
        (
            SieIntercept {
                icptcode: icpt::OPEREXC,
                ipa: 0xB200,
                icptstatus: 0x21,
                pgmilc: 0,
            },
            2,
        ),
        (
            SieIntercept {
                icptcode: 0x10,
                ipa: 0xB200,
                icptstatus: 0,
                pgmilc: 6,
            },
            0,
        ),
    ];
    for (intercept, ilc) in cases {
        let (vm, mut vcpu) = setup();
        vcpu.intercept = intercept;
        inject_program_interruption(
            &mut vcpu,
            PgmInfo {
                code: 4,
                ..Default::default()
            },
        );
        assert!(deliver_pending(&vm, &mut vcpu));
        assert_eq!(lc(&vm, lowcore::PGM_ILC, 2), [0, ilc], "{intercept:?}");
    }
    let (_, mut vcpu) = setup();
    inject_program_interruption(
        &mut vcpu,
        PgmInfo {
            code: 4,
            flags: KVM_S390_PGM_FLAGS_ILC_VALID | 2,
            ..Default::default()
        },
    );
    assert_eq!(
        vcpu.pending_pgm.unwrap().flags,
        KVM_S390_PGM_FLAGS_ILC_VALID | 2
    );
}

/// §9.5: a PER event merges into a pending record; a new code keeps a pending PER
/// bit; a record carrying PER and a code replaces; otherwise the last one wins.
#[test]
fn s9_5_per_merge() {
    let (_, mut vcpu) = setup();
    let prot = PgmInfo {
        code: 4,
        teid: Teid(0x1400),
        exc_access_id: 1,
        ..Default::default()
    };
    inject_program_interruption(&mut vcpu, prot);
    inject_program_interruption(
        &mut vcpu,
        PgmInfo {
            code: 0x80,
            teid: Teid(0x9999),
            ..Default::default()
        },
    );
    let p = vcpu.pending_pgm.unwrap();
    assert_eq!((p.code, p.teid, p.exc_access_id), (0x84, Teid(0x1400), 1));

    let (_, mut vcpu) = setup();
    inject_program_interruption(
        &mut vcpu,
        PgmInfo {
            code: 0x80,
            ..Default::default()
        },
    );
    inject_program_interruption(&mut vcpu, prot);
    let p = vcpu.pending_pgm.unwrap();
    assert_eq!((p.code, p.teid), (0x84, Teid(0x1400)));
    inject_program_interruption(
        &mut vcpu,
        PgmInfo {
            code: 0x91,
            ..Default::default()
        },
    );
    assert_eq!(vcpu.pending_pgm.unwrap().code, 0x91);

    let (_, mut vcpu) = setup();
    inject_program_interruption(&mut vcpu, prot);
    inject_program_interruption(
        &mut vcpu,
        PgmInfo {
            code: 0x11,
            ..Default::default()
        },
    );
    assert_eq!(
        vcpu.pending_pgm.unwrap(),
        PgmInfo {
            code: 0x11,
            flags: 5,
            ..Default::default()
        }
    );
}

/// §9.5 delivery of a merged PER record: the code at 142 carries the PER bit and the
/// code-specific part follows the code without it.
#[test]
fn s9_5_per_bit_delivered_with_code() {
    let (vm, mut vcpu) = setup();
    inject_program_interruption(
        &mut vcpu,
        PgmInfo {
            code: 0x80,
            ..Default::default()
        },
    );
    inject_program_interruption(
        &mut vcpu,
        PgmInfo {
            code: 4,
            teid: Teid(0x5400),
            ..Default::default()
        },
    );
    assert!(deliver_pending(&vm, &mut vcpu));
    assert_eq!(lc(&vm, lowcore::PGM_CODE, 2), [0, 0x84]);
    assert_eq!(lc_u64(&vm, lowcore::TRANS_EXC_CODE), 0x5400);
}

/// Lowcore outside memory: nothing stored, no new PSW, the interruption consumed, a
/// nullifying code still rewinds; no panic.
#[test]
fn lowcore_outside_memory() {
    let (vm, mut vcpu) = setup();
    vcpu.prefix = 0x4000_0000;
    inject_program_interruption(
        &mut vcpu,
        PgmInfo {
            code: 0x11,
            ..Default::default()
        },
    );
    assert_eq!(
        deliver_program_interruption(&vm, &mut vcpu),
        Delivery::LowcoreNotInMemory
    );
    assert_eq!(vcpu.pending_pgm, None);
    assert_eq!(
        vcpu.psw,
        Psw {
            addr: OLD_PSW.addr - 4,
            ..OLD_PSW
        }
    );
    assert_eq!(
        deliver_program_interruption(&vm, &mut vcpu),
        Delivery::NothingPending
    );
}

/// Nothing pending: nothing happens.
#[test]
fn nothing_pending() {
    let (vm, mut vcpu) = setup();
    assert!(!deliver_pending(&vm, &mut vcpu));
    assert_eq!(vcpu.psw, OLD_PSW);
    assert_eq!(lc(&vm, lowcore::PGM_ILC, 4), [0xFF; 4]);
}

/// A protected vCPU's interruption is consumed without touching the lowcore.
#[test]
fn protected_vcpu_delivery_leaves_lowcore() {
    let (vm, mut vcpu) = setup();
    vcpu.protected = true;
    inject_program_interruption(
        &mut vcpu,
        PgmInfo {
            code: 4,
            ..Default::default()
        },
    );
    assert_eq!(
        deliver_program_interruption(&vm, &mut vcpu),
        Delivery::Delivered
    );
    assert_eq!(lc(&vm, lowcore::PGM_ILC, 4), [0xFF; 4]);
    assert_eq!(vcpu.pending_pgm, None);
    let k = vm.storage_key(AbsoluteAddress(PREFIX as u64)).unwrap();
    assert_eq!(k, StorageKey(0));
}
