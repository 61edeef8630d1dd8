//! Target `memop_raw`: one raw `struct kvm_s390_mem_op` (64 bytes, any contents, some
//! fields optionally steered into range) and a choice of user buffers, on the VM fd or
//! the vCPU fd of a guest derived from the same input (`guest.rs`).
//!
//! What is asserted (kernel-semantics.md sections in brackets):
//! * the return value is in the kernel's set: 0, -EINVAL, -E2BIG, -EFAULT, -ENOMEM,
//!   the codes of §9.1 (vm ops: 4 and 5 only); never -EAGAIN (§13.1 Q6);
//! * validation (§3.1-§3.8) is checked against an independent re-implementation: a
//!   rejected struct changes nothing at all;
//! * vm ops (§3.3, §3.4, §6, §7) and SIDA ops (§3.8) are run a second time on a
//!   reference model over a copy of memory and keys, and memory, keys, the return value
//!   and both user buffers must match exactly;
//! * logical vcpu ops (§3.6, §5) must keep the invariants: a fetch or CHECK_ONLY
//!   moves no data; memops never change ACC/F and never clear R/C (§10.3); a frame
//!   whose bytes changed has R and C; a translation-phase failure and an unterminated
//!   key failure move no data (§5.8, §9.4); the pgm record has the fields §9.3 gives
//!   the code; the code is possible for the vCPU state (DAT, AR mode, LAP, key);
//!   INJECT_EXCEPTION queues exactly that record (§3.11);
//! * CHECK_ONLY: vm check-only changes nothing, vcpu check-only sets nothing but R
//!   bits and none at all with DAT off (§3.10, §10.3); and the same struct without
//!   CHECK_ONLY then gives the result §5.10 allows: 0 after 0, the same record after a
//!   translation-phase exception, and after a key exception a key exception on the
//!   same page or a translation exception of a later page;
//! * then delivery (§9.5) and TPROT (§16) on the resulting state must not panic.

use super::guest::{self, FuzzGuest};
use super::input::Input;
use super::snapshot::Snapshot;
use super::tlb;
use s390_gaccess::exception::AccessMode;
use s390_gaccess::exception::PgmInfo;
use s390_gaccess::memop::abi::{
    KVM_S390_MEMOP_ABSOLUTE_CMPXCHG, KVM_S390_MEMOP_ABSOLUTE_READ, KVM_S390_MEMOP_ABSOLUTE_WRITE,
    KVM_S390_MEMOP_F_CHECK_ONLY, KVM_S390_MEMOP_F_INJECT_EXCEPTION,
    KVM_S390_MEMOP_F_SKEY_PROTECTION, KVM_S390_MEMOP_LOGICAL_READ, KVM_S390_MEMOP_LOGICAL_WRITE,
    KVM_S390_MEMOP_SIDA_READ, KVM_S390_MEMOP_SIDA_WRITE, KvmS390MemOp,
};
use s390_gaccess::memop::{
    Profile, UserBuffer, UserMemory, deliver_pending, intercept_ilen, sida_size, vcpu_mem_op,
    vm_mem_op,
};
use s390_gaccess::vcpu::{Psw, Vcpu, cr0};

/// -EINVAL.
pub const EINVAL: i32 = -22;
/// -E2BIG.
pub const E2BIG: i32 = -7;
/// -EFAULT.
pub const EFAULT: i32 = -14;
/// -ENOMEM.
pub const ENOMEM: i32 = -12;
/// -EAGAIN.
pub const EAGAIN: i32 = -11;

const CHECK: u64 = KVM_S390_MEMOP_F_CHECK_ONLY;
const INJECT: u64 = KVM_S390_MEMOP_F_INJECT_EXCEPTION;
const SKEY: u64 = KVM_S390_MEMOP_F_SKEY_PROTECTION;
const PAGE: u64 = 4096;
/// Largest user buffer needed: a 256-page SIDA (§3.8), plus slack.
const MAX_BUF: usize = 256 * 4096 + 16;
/// Bytes of the input that hold the struct and its steering.
const HEAD: usize = 96;

/// The program-interruption codes a logical memop may return (§9.1).
pub const VCPU_CODES: [i32; 15] = [
    0x04, 0x05, 0x10, 0x11, 0x12, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x38, 0x39, 0x3A, 0x3B,
];

// TEID bits 56/60/61 (§9.2, §9.3) as a 3-bit value b56 b60 b61.
const LA: u8 = 0b100;
const KEYC: u8 = 0b010;
const ALC: u8 = 0b011;
const DATP: u8 = 0b001;
const TERMINATED: u8 = 0b000;

fn teid_bits(teid: u64) -> u8 {
    (((teid >> 7) & 1) << 2 | ((teid >> 3) & 1) << 1 | ((teid >> 2) & 1)) as u8
}

/// What one input did (for corpus statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Summary {
    /// VM fd (true) or vCPU fd.
    pub on_vm: bool,
    /// The op number.
    pub op: u32,
    /// The flags.
    pub flags: u64,
    /// The return value.
    pub ret: i32,
    /// DAT on.
    pub dat: bool,
}

/// Run one input.
pub fn run(data: &[u8]) -> Option<Summary> {
    // The first bytes are the struct and its steering (fixed offsets, so that the
    // fuzzer's comparisons map onto them); the rest describes the guest and buffers.
    let (head, body) = data.split_at(data.len().min(HEAD));
    let mut h = Input::new(head);
    let mut inp = Input::new(body);
    let mut g = guest::build(&mut inp)?;
    let ctl = h.u8();
    if ctl & 0x3F == 0x3F {
        g.vm.set_protected(true);
    }
    if ctl & 0x1F == 0x1E {
        g.vcpu.protected = true;
        let n = inp.below(3 * 4096) as usize;
        g.vcpu.sida = inp.bytes(n);
    }
    let profile = if ctl & 0x80 != 0 {
        Profile::Linux63
    } else {
        Profile::Linux70
    };
    let mut mop = KvmS390MemOp::from_be_bytes(&h.array::<64>());
    steer(&g, &mut h, &mut mop);
    let on_vm = match mop.op() {
        KVM_S390_MEMOP_ABSOLUTE_READ
        | KVM_S390_MEMOP_ABSOLUTE_WRITE
        | KVM_S390_MEMOP_ABSOLUTE_CMPXCHG => h.below(8) != 0,
        _ => h.below(8) == 0,
    };
    let buf = pick_buffer(&mut inp, mop.size());
    let old = pick_buffer(&mut inp, mop.size());
    let dat = g.vcpu.psw.dat();
    let ret = if on_vm {
        exec_vm(&g, profile, &mop, buf, old)
    } else {
        let twin_fill = inp.u8();
        exec_vcpu(&mut g, profile, &mop, buf, old, Some(twin_fill))
    };
    // Whatever is pending is delivered; TPROT looks at the same address.
    deliver_pending(&g.vm, &mut g.vcpu);
    let _ = s390_gaccess::tprot::test_protection(&g.vm, &g.vcpu, mop.gaddr(), mop.ar(), mop.key());
    Some(Summary {
        on_vm,
        op: mop.op(),
        flags: mop.flags(),
        ret,
        dat,
    })
}

/// Steer some fields into their interesting ranges, as the input decides.
fn steer(g: &FuzzGuest, inp: &mut Input<'_>, mop: &mut KvmS390MemOp) {
    let s = inp.u8();
    if s & 1 != 0 {
        mop.set_op(inp.below(8) as u32);
    }
    if s & 2 != 0 {
        mop.set_flags(inp.below(8));
    }
    match (s >> 2) & 3 {
        0 => {}
        1 => mop.set_size([1, 2, 3, 4, 8, 16, 5, 12][inp.below(8) as usize]),
        2 => mop.set_size(1 + inp.below(0x2000) as u32),
        _ => mop.set_size(1 + inp.below(0x10001) as u32),
    }
    if s & 0x10 != 0 {
        mop.set_key(inp.u8() & 0xF);
    }
    if s & 0x20 != 0 {
        mop.set_ar(inp.below(17) as u8);
    }
    if s & 0x40 != 0 {
        let vm_op = matches!(mop.op(), 4..=6);
        let mut gaddr = if vm_op {
            g.pick_abs(inp)
        } else {
            g.pick_gaddr(inp)
        };
        let size = mop.size() as u64;
        if mop.op() == KVM_S390_MEMOP_ABSOLUTE_CMPXCHG && size.is_power_of_two() && inp.bool() {
            gaddr &= !(size - 1);
        }
        mop.set_gaddr(gaddr);
    }
    if s & 0x80 != 0 && matches!(mop.op(), 2 | 3) {
        mop.set_sida_offset(inp.below(3 * 4096) as u32);
    }
}

/// A user buffer: unmapped, one byte short, exact, or longer than `size`.
fn pick_buffer(inp: &mut Input<'_>, size: u32) -> Option<Vec<u8>> {
    let n = (size as usize).min(MAX_BUF);
    let len = match inp.below(8) {
        0 => return None,
        1 => n.saturating_sub(1),
        2 => n + 16,
        _ => n,
    };
    let mut b = vec![0u8; len];
    inp.fill(&mut b);
    Some(b)
}

fn user_buffer(b: &mut Option<Vec<u8>>) -> UserBuffer<'_> {
    match b {
        Some(v) => UserBuffer::Valid(v),
        None => UserBuffer::Null,
    }
}

/// `copy_from_user`: all `n` bytes or a fault.
fn copy_from(b: &Option<Vec<u8>>, n: usize) -> Option<Vec<u8>> {
    match b {
        Some(v) if v.len() >= n => Some(v[..n].to_vec()),
        _ if n == 0 => Some(Vec::new()),
        _ => None,
    }
}

/// `copy_to_user`: all of `data` or a fault (nothing written).
fn copy_to(b: &mut Option<Vec<u8>>, data: &[u8]) -> bool {
    match b {
        Some(v) if v.len() >= data.len() => {
            v[..data.len()].copy_from_slice(data);
            true
        }
        _ => data.is_empty(),
    }
}

/// `mem_op_validate_common` (§3.2), independently written.
fn validate_common(mop: &KvmS390MemOp, supported: u64) -> Option<i32> {
    if mop.flags() & !supported != 0 || mop.size() == 0 {
        return Some(EINVAL);
    }
    if mop.size() > 65536 {
        return Some(E2BIG);
    }
    if mop.flags() & SKEY != 0 && mop.key() > 15 {
        return Some(EINVAL);
    }
    None
}

fn access_key(mop: &KvmS390MemOp) -> u8 {
    if mop.flags() & SKEY != 0 {
        mop.key()
    } else {
        0
    }
}

/// The basic key rule (§8.3).
fn permits(key: u8, skey: u8, store: bool) -> bool {
    key == 0 || key == skey >> 4 || (!store && skey & 0x08 == 0)
}

/// The VM-fd memop on the reference model (§3.1, §3.3, §3.4, §6, §7). Mutates `m` and
/// the buffers as the kernel would and returns the ioctl value.
fn reference_vm(
    m: &mut Snapshot,
    protected: bool,
    profile: Profile,
    mop: &KvmS390MemOp,
    buf: &mut Option<Vec<u8>>,
    old: &mut Option<Vec<u8>>,
) -> i32 {
    if protected {
        return EINVAL;
    }
    let size = mop.size() as usize;
    let gaddr = mop.gaddr();
    let pre_rewrite = profile == Profile::Linux63;
    match mop.op() {
        KVM_S390_MEMOP_ABSOLUTE_READ | KVM_S390_MEMOP_ABSOLUTE_WRITE => {
            if let Some(e) = validate_common(mop, SKEY | CHECK) {
                return e;
            }
            let key = access_key(mop);
            let store = mop.op() == KVM_S390_MEMOP_ABSOLUTE_WRITE;
            if pre_rewrite && !m.in_memory(gaddr) {
                return 5;
            }
            if mop.flags() & CHECK != 0 {
                if pre_rewrite && key == 0 {
                    return 0;
                }
                let mut a = gaddr;
                let mut left = size as u64;
                while left > 0 {
                    let frag = (PAGE - (a & 0xFFF)).min(left);
                    let Some(k) = m.key(a) else { return 5 };
                    if !permits(key, k, store) {
                        return 4;
                    }
                    left -= frag;
                    a = a.wrapping_add(frag);
                }
                return 0;
            }
            let data = if store {
                match copy_from(buf, size) {
                    Some(d) => d,
                    None => return EFAULT,
                }
            } else {
                vec![0u8; size]
            };
            let mut read = vec![0u8; size];
            let mut a = gaddr;
            let mut done = 0usize;
            while done < size {
                let frag = (PAGE - (a & 0xFFF)).min((size - done) as u64) as usize;
                let Some(k) = m.key(a) else { return 5 };
                if !permits(key, k, store) {
                    return 4;
                }
                for i in 0..frag {
                    let at = a + i as u64;
                    if store {
                        m.set_byte(at, data[done + i]);
                    } else {
                        read[done + i] = m.byte(at).unwrap_or(0);
                    }
                }
                m.or_key(a, if store { 0x06 } else { 0x04 });
                done += frag;
                a = a.wrapping_add(frag as u64);
            }
            if !store && !copy_to(buf, &read) {
                return EFAULT;
            }
            0
        }
        KVM_S390_MEMOP_ABSOLUTE_CMPXCHG => {
            if let Some(e) = validate_common(mop, SKEY) {
                return e;
            }
            if size > 16 {
                return EINVAL;
            }
            let Some(new) = copy_from(buf, size) else {
                return EFAULT;
            };
            let Some(mut o) = copy_from(old, size) else {
                return EFAULT;
            };
            if pre_rewrite && !m.in_memory(gaddr) {
                return 5;
            }
            let key = access_key(mop);
            let (r, exchanged) = (|| {
                if gaddr & (size as u64 - 1) != 0 {
                    return (EINVAL, false);
                }
                let Some(k) = m.key(gaddr) else {
                    return (5, false);
                };
                if !matches!(size, 1 | 2 | 4 | 8 | 16) {
                    return (EINVAL, false);
                }
                if key != 0 && key != k >> 4 {
                    o.fill(0);
                    return (4, false);
                }
                let cur: Vec<u8> = (0..size as u64)
                    .map(|i| m.byte(gaddr + i).unwrap_or(0))
                    .collect();
                if cur == o {
                    for (i, b) in new.iter().enumerate() {
                        m.set_byte(gaddr + i as u64, *b);
                    }
                    m.or_key(gaddr, 0x06);
                    (0, true)
                } else {
                    o = cur;
                    m.or_key(gaddr, 0x04);
                    (0, false)
                }
            })();
            if !exchanged && !copy_to(old, &o) {
                return EFAULT;
            }
            r
        }
        _ => EINVAL,
    }
}

fn check_return_set(ret: i32, vm: bool) {
    assert_ne!(ret, EAGAIN, "-EAGAIN is never returned (§13.1 Q6)");
    if ret < 0 {
        assert!(
            [EINVAL, E2BIG, EFAULT, ENOMEM].contains(&ret),
            "errno {ret} is not in the memop set (§3.9)"
        );
    } else if ret > 0 {
        if vm {
            assert!(ret == 4 || ret == 5, "vm op returned code {ret:#x} (§9.1)");
        } else {
            assert!(VCPU_CODES.contains(&ret), "code {ret:#x} is not in §9.1");
        }
    }
}

/// Run a VM-fd memop and compare it with the reference model.
pub fn exec_vm(
    g: &FuzzGuest,
    profile: Profile,
    mop: &KvmS390MemOp,
    mut buf: Option<Vec<u8>>,
    mut old: Option<Vec<u8>>,
) -> i32 {
    let before = Snapshot::take(&g.vm);
    let (buf0, old0) = (buf.clone(), old.clone());
    let ret = {
        let mut user = UserMemory {
            buf: user_buffer(&mut buf),
            old: user_buffer(&mut old),
        };
        vm_mem_op(&g.vm, profile, mop, &mut user)
    };
    check_return_set(ret, true);
    let after = Snapshot::take(&g.vm);
    let mut expect = before.clone();
    let (mut ebuf, mut eold) = (buf0, old0);
    let eret = reference_vm(
        &mut expect,
        g.vm.is_protected(),
        profile,
        mop,
        &mut ebuf,
        &mut eold,
    );
    assert_eq!(ret, eret, "vm memop {mop:?} ({profile:?})");
    assert!(
        expect == after,
        "vm memop {mop:?}: memory/keys differ from the reference: {}",
        expect.describe_diff(&after)
    );
    assert!(ebuf == buf, "vm memop {mop:?}: user buffer differs");
    assert!(eold == old, "vm memop {mop:?}: old buffer differs");
    ret
}

/// `kvm_s390_vcpu_memsida_op` validation (§3.5, §3.6, §3.8), independently written:
/// the errno, or `None` when the op gets past validation.
fn validate_vcpu(mop: &KvmS390MemOp, vcpu: &Vcpu) -> Option<i32> {
    match mop.op() {
        KVM_S390_MEMOP_LOGICAL_READ | KVM_S390_MEMOP_LOGICAL_WRITE => {
            if let Some(e) = validate_common(mop, INJECT | CHECK | SKEY) {
                return Some(e);
            }
            if mop.ar() >= 16 || vcpu.protected {
                return Some(EINVAL);
            }
            None
        }
        KVM_S390_MEMOP_SIDA_READ | KVM_S390_MEMOP_SIDA_WRITE => {
            if mop.flags() != 0 || mop.size() == 0 {
                return Some(EINVAL);
            }
            let Some(end) = mop.size().checked_add(mop.sida_offset()) else {
                return Some(EINVAL);
            };
            if end > sida_size(vcpu) {
                return Some(E2BIG);
            }
            if !vcpu.protected {
                return Some(EINVAL);
            }
            None
        }
        _ => Some(EINVAL),
    }
}

/// The effective address (§5.1), independently written.
fn effective(vcpu: &Vcpu, ga: u64) -> u64 {
    match (vcpu.psw.mask & Psw::EA != 0, vcpu.psw.mask & Psw::BA != 0) {
        (true, true) => ga,
        (false, true) => ga & 0x7FFF_FFFF,
        _ => ga & 0xFF_FFFF,
    }
}

/// The effective page addresses of the fragments of `[gaddr, gaddr+size)` (§5.4).
fn fragment_pages(vcpu: &Vcpu, gaddr: u64, size: u64) -> Vec<u64> {
    let mut pages = Vec::new();
    let mut ga = effective(vcpu, gaddr);
    let mut left = size;
    let mut off = ga & 0xFFF;
    while left > 0 {
        let frag = (PAGE - off).min(left);
        pages.push(ga & !0xFFF);
        ga = effective(vcpu, ga.wrapping_add(frag));
        left -= frag;
        off = 0;
    }
    pages
}

/// Run a vCPU-fd memop and check it; for a CHECK_ONLY logical op that got past
/// validation, `twin` (a fill byte) also runs the same op without CHECK_ONLY and
/// compares the two per §5.10.
pub fn exec_vcpu(
    g: &mut FuzzGuest,
    profile: Profile,
    mop: &KvmS390MemOp,
    mut buf: Option<Vec<u8>>,
    mut old: Option<Vec<u8>>,
    twin: Option<u8>,
) -> i32 {
    // For a logical op that passes validation, translate its fragments first with
    // the uncached reference of the `tlb` target. This sets the R bits the op's own
    // walks will set, so that afterwards the keys can be compared exactly.
    let logical = matches!(mop.op(), 0 | 1) && validate_vcpu(mop, &g.vcpu).is_none();
    let plan = logical.then(|| reference_fragments(g, mop));
    let before = Snapshot::take(&g.vm);
    let vcpu0 = g.vcpu.clone();
    let (buf0, old0) = (buf.clone(), old.clone());
    let ret = {
        let mut user = UserMemory {
            buf: user_buffer(&mut buf),
            old: user_buffer(&mut old),
        };
        vcpu_mem_op(&g.vm, &mut g.vcpu, profile, mop, &mut user)
    };
    check_return_set(ret, false);
    let after = Snapshot::take(&g.vm);
    assert!(old == old0, "vcpu ops never touch old_addr");
    if let Some(e) = validate_vcpu(mop, &vcpu0) {
        assert_eq!(ret, e, "vcpu validation of {mop:?}");
        assert!(
            before == after,
            "a rejected memop changed memory: {}",
            before.describe_diff(&after)
        );
        assert_eq!(g.vcpu, vcpu0, "a rejected memop changed the vCPU");
        assert!(buf == buf0, "a rejected memop changed the buffer");
        return ret;
    }
    match mop.op() {
        KVM_S390_MEMOP_SIDA_READ | KVM_S390_MEMOP_SIDA_WRITE => {
            check_sida(mop, ret, &before, &after, &vcpu0, &g.vcpu, &buf0, &buf);
        }
        _ => {
            check_logical(mop, ret, &before, &after, &vcpu0, &g.vcpu, &buf0, &buf);
            if let Some(plan) = &plan {
                check_against_plan(mop, ret, plan, &before, &after, &g.vcpu, &buf0, &buf);
            }
            if mop.flags() & CHECK != 0
                && let Some(fill) = twin
            {
                run_twin(g, profile, mop, ret, fill);
            }
        }
    }
    ret
}

#[allow(clippy::too_many_arguments)]
fn check_sida(
    mop: &KvmS390MemOp,
    ret: i32,
    before: &Snapshot,
    after: &Snapshot,
    vcpu0: &Vcpu,
    vcpu: &Vcpu,
    buf0: &Option<Vec<u8>>,
    buf: &Option<Vec<u8>>,
) {
    assert!(before == after, "SIDA ops do not touch guest memory");
    let start = mop.sida_offset() as usize;
    let end = start + mop.size() as usize;
    let mut ebuf = buf0.clone();
    let mut evcpu = vcpu0.clone();
    let eret = if mop.op() == KVM_S390_MEMOP_SIDA_READ {
        let bytes: Vec<u8> = (start..end)
            .map(|i| vcpu0.sida.get(i).copied().unwrap_or(0))
            .collect();
        if copy_to(&mut ebuf, &bytes) {
            0
        } else {
            EFAULT
        }
    } else {
        match copy_from(buf0, end - start) {
            None => EFAULT,
            Some(d) => {
                if evcpu.sida.len() < end {
                    evcpu.sida.resize(sida_size(vcpu0) as usize, 0);
                }
                evcpu.sida[start..end].copy_from_slice(&d);
                0
            }
        }
    };
    assert_eq!(ret, eret, "SIDA op {mop:?}");
    assert!(ebuf == *buf, "SIDA op: user buffer");
    assert_eq!(*vcpu, evcpu, "SIDA op: vCPU");
}

/// The invariants of a logical op that passed validation (§3.6, §5, §9.3, §10.3).
#[allow(clippy::too_many_arguments)]
fn check_logical(
    mop: &KvmS390MemOp,
    ret: i32,
    before: &Snapshot,
    after: &Snapshot,
    vcpu0: &Vcpu,
    vcpu: &Vcpu,
    buf0: &Option<Vec<u8>>,
    buf: &Option<Vec<u8>>,
) {
    let store = mop.op() == KVM_S390_MEMOP_LOGICAL_WRITE;
    let check_only = mop.flags() & CHECK != 0;
    let inject = mop.flags() & INJECT != 0;
    let key = access_key(mop);
    let dat = vcpu0.psw.dat();
    let ar_mode = vcpu0.psw.as_bits() == 1;
    let ctx = format!("{mop:?} psw={:#x} cr0={:#x}", vcpu0.psw.mask, vcpu0.cr[0]);
    assert!(
        ret != EINVAL && ret != E2BIG,
        "{ctx}: validation passed but got {ret}"
    );
    // Keys: ACC and F never change, R and C are never cleared (§10.3).
    for (frame, k0, k1) in before.changed_keys(after) {
        assert_eq!(k0 & 0xF9, k1 & 0xF9, "{ctx}: ACC/F changed at {frame:#x}");
        assert_eq!(k0 & !k1, 0, "{ctx}: R/C cleared at {frame:#x}");
        if !store || check_only {
            assert_eq!(
                k0 & 0x02,
                k1 & 0x02,
                "{ctx}: C set by a fetch at {frame:#x}"
            );
        }
    }
    let changed = before.changed_bytes(after);
    if !store || check_only {
        assert!(changed.is_empty(), "{ctx}: a fetch or check moved data");
    }
    assert!(
        changed.len() <= mop.size() as usize,
        "{ctx}: too many bytes changed"
    );
    for a in &changed {
        let k = after.key(*a).unwrap_or(0);
        assert_eq!(k & 0x06, 0x06, "{ctx}: stored frame {a:#x} lacks R/C");
    }
    if check_only && !dat {
        assert!(before == after, "{ctx}: DAT-off CHECK_ONLY changed keys");
    }
    if check_only || store || ret != 0 {
        assert!(buf == buf0, "{ctx}: user buffer changed");
    }
    if ret == EFAULT {
        assert!(!check_only, "{ctx}: CHECK_ONLY never copies");
        assert_eq!(
            vcpu, vcpu0,
            "{ctx}: -EFAULT changed the vCPU (no injection)"
        );
        if store {
            assert!(
                before == after,
                "{ctx}: store copy fault is before translation"
            );
        }
        return;
    }
    if ret <= 0 {
        assert_eq!(vcpu, vcpu0, "{ctx}: success changed the vCPU");
        return;
    }
    // A program interruption: the record (§9.3) and injection (§3.11).
    let pgm = vcpu.pgm;
    assert_eq!(pgm.code as i32, ret, "{ctx}: pgm code");
    let mut rest = vcpu.clone();
    rest.pgm = vcpu0.pgm;
    rest.pending_pgm = vcpu0.pending_pgm;
    assert_eq!(
        rest, *vcpu0,
        "{ctx}: a failing memop changed other vCPU state"
    );
    if inject {
        // Queued with the ILC of the last intercept, marked valid (§9.5).
        let queued = PgmInfo {
            flags: intercept_ilen(&vcpu0.intercept) | 1,
            ..pgm
        };
        assert_eq!(vcpu.pending_pgm, Some(queued), "{ctx}: injection");
    } else {
        assert_eq!(vcpu.pending_pgm, vcpu0.pending_pgm, "{ctx}: no injection");
    }
    assert_eq!(pgm.op_access_id, 0);
    assert_eq!(pgm.flags, 0);
    let teid = pgm.teid.0;
    let bits = teid_bits(teid);
    let code = ret as u16;
    match code {
        0x04 | 0x10 | 0x11 | 0x38..=0x3B => {
            let fsi = (teid >> 10) & 3;
            assert_eq!(fsi, if store { 1 } else { 2 }, "{ctx}: FSI");
            assert_eq!(teid & 3, vcpu0.psw.as_bits() as u64, "{ctx}: TEID AS");
            assert_eq!(pgm.exc_access_id, mop.ar(), "{ctx}: access id");
            assert_eq!(teid & 0x370, 0, "{ctx}: unused TEID bits");
            if code != 4 {
                assert_eq!(bits, 0, "{ctx}: bits 56/60/61 only for protection");
            }
        }
        0x29..=0x2D => {
            assert_eq!(teid, 0, "{ctx}: no TEID for ART codes");
            assert_eq!(pgm.exc_access_id, mop.ar());
        }
        _ => {
            assert_eq!(teid, 0, "{ctx}: no TEID for code {code:#x}");
            assert_eq!(pgm.exc_access_id, 0);
        }
    }
    // Which codes the vCPU state allows.
    if matches!(code, 0x10..=0x12 | 0x38..=0x3B) {
        assert!(dat, "{ctx}: DAT exception {code:#x} with DAT off");
    }
    if matches!(code, 0x28..=0x2D) {
        assert!(dat && ar_mode, "{ctx}: ART exception outside AR mode");
    }
    let pages = fragment_pages(vcpu0, mop.gaddr(), mop.size() as u64);
    let teid_page = teid & !0xFFF;
    if code == 4 {
        match bits {
            LA => assert!(
                store && vcpu0.cr[0] & cr0::LOW_ADDRESS_PROTECTION != 0,
                "{ctx}: LA"
            ),
            DATP => assert!(store && dat, "{ctx}: DAT protection"),
            ALC => assert!(store && dat && ar_mode, "{ctx}: ALC"),
            KEYC | TERMINATED => assert!(key != 0, "{ctx}: key protection with key 0"),
            _ => panic!("{ctx}: TEID bits {bits:03b} are not a memop protection type"),
        }
        if bits == TERMINATED {
            assert!(
                store && !check_only,
                "{ctx}: only real stores terminate (§9.4)"
            );
        }
        if bits == KEYC && store && !check_only {
            assert_eq!(
                teid_page, pages[0],
                "{ctx}: key failure past page 0 terminates"
            );
        }
        if bits == TERMINATED {
            assert_ne!(teid_page, pages[0], "{ctx}: page 0 never terminates");
        }
    }
    if matches!(code, 0x04 | 0x10 | 0x11 | 0x38..=0x3B) {
        if code == 4 && bits == ALC {
            let ga = if check_only {
                mop.gaddr()
            } else {
                effective(vcpu0, mop.gaddr())
            };
            assert_eq!(teid_page, ga & !0xFFF, "{ctx}: ALC TEID address (§5.9)");
        } else {
            assert!(pages.contains(&teid_page), "{ctx}: TEID address {teid:#x}");
        }
    }
    // Data: only a terminated store leaves data moved (§5.8, §9.4).
    if !(code == 4 && bits == TERMINATED) {
        assert!(changed.is_empty(), "{ctx}: failed memop moved data");
        for (frame, k0, k1) in before.changed_keys(after) {
            assert_eq!(
                k0 & 0x02,
                k1 & 0x02,
                "{ctx}: C set at {frame:#x} by a failure"
            );
        }
    }
}

/// One fragment of a logical access: effective address, absolute address, length.
type Fragment = (u64, u64, usize);

/// The fragments of a logical op translated by the uncached reference (`tlb.rs`) with
/// key 0 (§5.4 without the key check), or the index and record of the first fragment
/// that fails.
fn reference_fragments(
    g: &FuzzGuest,
    mop: &KvmS390MemOp,
) -> Result<Vec<Fragment>, (usize, PgmInfo)> {
    let vcpu = &g.vcpu;
    let mode = if mop.op() == KVM_S390_MEMOP_LOGICAL_WRITE {
        AccessMode::Store
    } else {
        AccessMode::Fetch
    };
    let asce_ga = if mop.flags() & CHECK != 0 {
        mop.gaddr()
    } else {
        effective(vcpu, mop.gaddr())
    };
    let mut out = Vec::new();
    let mut ga = mop.gaddr();
    let mut left = mop.size() as u64;
    while left > 0 {
        let eff = effective(vcpu, ga);
        let frag = (PAGE - (eff & 0xFFF)).min(left);
        match tlb::reference(&g.vm, vcpu, eff, asce_ga, mop.ar(), mode, 0) {
            tlb::Outcome::Abs(abs) => out.push((eff, abs, frag as usize)),
            tlb::Outcome::Pgm(p) => return Err((out.len(), p)),
            other => panic!("{mop:?}: reference gave {other:?} after validation"),
        }
        ga = eff.wrapping_add(frag);
        left -= frag;
    }
    Ok(out)
}

/// The logical op against the reference translation (§5.4, §5.8, §10.3): the first
/// failing fragment's record is the op's (for the real access, and for CHECK_ONLY
/// with key 0); after success every byte moved is the right one and the keys are the
/// expected ones exactly; a key failure on fragment k moved exactly fragments 0..k.
#[allow(clippy::too_many_arguments)]
fn check_against_plan(
    mop: &KvmS390MemOp,
    ret: i32,
    plan: &Result<Vec<Fragment>, (usize, PgmInfo)>,
    before: &Snapshot,
    after: &Snapshot,
    vcpu: &Vcpu,
    buf0: &Option<Vec<u8>>,
    buf: &Option<Vec<u8>>,
) {
    let store = mop.op() == KVM_S390_MEMOP_LOGICAL_WRITE;
    let check_only = mop.flags() & CHECK != 0;
    let key = access_key(mop);
    let ctx = format!("{mop:?} psw={:#x}", vcpu.psw.mask);
    if ret == EFAULT && store {
        return; // copy_from_user failed before translation (checked elsewhere)
    }
    if ret != 0 && !store {
        // §3.6 step 4: the kernel reads into a scratch buffer and copies it to the user
        // only on success; the library reads in place, so it must leave it as it was.
        assert!(buf == buf0, "{ctx}: a failed read changed the user buffer");
    }
    let frags = match plan {
        Err((k, p)) => {
            if !check_only || key == 0 {
                assert_eq!(ret, p.code as i32, "{ctx}: fragment {k} fails with {p:?}");
                assert_eq!(vcpu.pgm, *p, "{ctx}: the record of fragment {k}");
            } else {
                assert!(ret > 0, "{ctx}: fragment {k} does not translate: {p:?}");
            }
            assert!(before == after, "{ctx}: {}", before.describe_diff(after));
            return;
        }
        Ok(f) => f,
    };
    // Every fragment translates: success, -EFAULT (fetch copy), or a key exception.
    let moved = match ret {
        0 if check_only => 0,
        0 => frags.len(),
        EFAULT => frags.len(),
        4 => {
            let bits = teid_bits(vcpu.pgm.teid.0);
            assert!(
                bits == KEYC || bits == TERMINATED,
                "{ctx}: not a key exception"
            );
            assert!(key != 0, "{ctx}: key exception with key 0");
            let page = vcpu.pgm.teid.0 & !0xFFF;
            let k = frags
                .iter()
                .position(|f| f.0 & !0xFFF == page)
                .unwrap_or_else(|| panic!("{ctx}: TEID page {page:#x} is not a fragment"));
            if check_only { 0 } else { k }
        }
        r => panic!("{ctx}: every fragment translates, yet {r:#x}"),
    };
    let mut expect = before.clone();
    let mut read = Vec::new();
    let mut done = 0usize;
    for &(_, abs, len) in &frags[..moved] {
        for i in 0..len {
            let a = abs.wrapping_add(i as u64);
            if store {
                let b = buf0.as_ref().map_or(0, |b| b[done + i]);
                expect.set_byte(a, b);
            } else {
                read.push(before.byte(a).expect("translated into memory"));
            }
        }
        expect.or_key(abs, if store { 0x06 } else { 0x04 });
        done += len;
    }
    assert!(
        expect == *after,
        "{ctx}: memory/keys differ from the reference moves of {moved} fragments: {}",
        expect.describe_diff(after)
    );
    if ret == 0 && !store && !check_only {
        let got = buf.as_ref().expect("copied to the user");
        assert!(got[..read.len()] == read[..], "{ctx}: data read");
        assert!(got[read.len()..] == buf0.as_ref().expect("buffer")[read.len()..]);
    }
}

/// Whether a failure is from the translation phase (anything but key protection).
fn key_phase(code: i32, bits: u8) -> bool {
    code == 4 && (bits == KEYC || bits == TERMINATED)
}

/// The same logical op without CHECK_ONLY (and without injection), compared with the
/// CHECK_ONLY result per §5.10.
fn run_twin(g: &mut FuzzGuest, profile: Profile, mop: &KvmS390MemOp, co: i32, fill: u8) {
    let co_pgm = g.vcpu.pgm;
    let mut real = *mop;
    real.set_flags(mop.flags() & !(CHECK | INJECT));
    let n = mop.size() as usize;
    let data: Vec<u8> = (0..n).map(|i| fill.wrapping_add(i as u8)).collect();
    let r = exec_vcpu(g, profile, &real, Some(data), None, None);
    let ctx = format!("{mop:?}: CHECK_ONLY gave {co:#x}, the access {r:#x}");
    if co <= 0 {
        assert_eq!(r, co, "{ctx} (§5.10)");
        return;
    }
    let co_bits = teid_bits(co_pgm.teid.0);
    let pgm = g.vcpu.pgm;
    if key_phase(co, co_bits) {
        assert!(
            r > 0,
            "{ctx}: the key check fails in both (§5.10 items 4, 5)"
        );
        if key_phase(r, teid_bits(pgm.teid.0)) {
            assert_eq!(
                pgm.teid.0 & !0xFFF,
                co_pgm.teid.0 & !0xFFF,
                "{ctx}: key failure on another page"
            );
        }
    } else {
        assert_eq!(r, co, "{ctx}: translation-phase exceptions agree");
        if co == 4 && co_bits == ALC {
            assert_eq!(pgm.teid.0 & 0xFFF, co_pgm.teid.0 & 0xFFF, "{ctx}: ALC TEID");
            assert_eq!(pgm.exc_access_id, co_pgm.exc_access_id);
        } else {
            assert_eq!(pgm, co_pgm, "{ctx}: same record");
        }
    }
}
