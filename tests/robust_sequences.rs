//! Random sequences of memops, storage-key ioctls, table edits and register changes
//! against a naive reference model (proptest-state-machine).
//!
//! The reference is written from kernel-semantics.md alone and shares no code with the
//! crate's engine: guest memory is a byte array, keys a byte array, and the DAT walk is
//! the straightforward §5.6 walk for the one shape the generator builds. The shape is
//! kept simple so that the reference stays simple:
//!
//! * memory: slot 0 = [0, 256 KiB), slot 1 = [512 KiB, 576 KiB), a hole between and
//!   nothing above (addressing exceptions);
//! * one segment-table space (ASCE: origin 0x8000, DT segment, TL 3, not private, no
//!   EDAT), page tables for segments 0-3 at 0xC000 + s * 0x800, mapping virtual pages to
//!   data frames, table frames (so logical writes can rewrite the tables), hole frames
//!   and the prefix area; some pages and every segment from 4 on invalid;
//! * the vCPU in 64-bit primary space, AR 0; DAT, LAP (CR0.35), FPO (CR0.38), SPO
//!   (CR0.39) and the prefix change;
//! * operations: logical read/write (§3.6, §5.4, §5.8, CHECK_ONLY §5.9), absolute
//!   read/write (§3.3, §6.1, §6.2), absolute cmpxchg (§3.4, §7), with and without keys;
//!   `KVM_S390_SET_SKEYS` / `GET_SKEYS`, `KVM_S390_KEYOP` (§10, §13.1); edits of
//!   segment- and page-table entries; register changes.
//!
//! After every step the ioctl return values, user buffers, the vCPU's pgm record
//! (code and TEID, §9.3), every byte of memory and every storage key (R and C included,
//! §10.3) must equal the reference's. The vCPU runs with its translation cache on, so
//! the sequences also check that the cache is invisible (§11 item 2).
//!
//! Cases: `ROBUST_CASES` (default 256), steps per case 1..`ROBUST_STEPS` (default 64).

use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::dat::{Asce, DesignationType};
use s390_gaccess::memop::abi::{KvmS390Keyop, KvmS390Skeys};
use s390_gaccess::memop::{MemOp, UserBuffer, get_skeys, keyop, set_skeys};
use s390_gaccess::vcpu::{Psw, Vcpu, cr0};
use s390_gaccess::vm::{Facilities, Vm};

const PAGE: u64 = 4096;
/// One past the highest address the model tracks.
const TOP: u64 = 0x90000;
const SLOTS: [(u64, u64); 2] = [(0, 0x40000), (0x80000, 0x10000)];
/// Segment-table origin.
const STO: u64 = 0x8000;
/// Page tables: segment s at PT + s * 0x800.
const PT: u64 = 0xC000;
/// Segments with a page table.
const SEGS: u64 = 4;
/// The PSW: DAT on, 64-bit, primary space.
const PSW_DAT: u64 = Psw::DAT | Psw::EA | Psw::BA;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn in_mem(a: u64) -> bool {
    SLOTS.iter().any(|&(s, z)| a >= s && a - s < z)
}

/// What one step returned, in the reference and in the system under test alike.
#[derive(Clone, PartialEq, Eq, Default)]
struct Outcome {
    ret: i32,
    /// The `buf` user buffer after the call.
    data: Vec<u8>,
    /// The `old_addr` buffer (cmpxchg) or the keyop / get-skeys result.
    old: Vec<u8>,
    /// Code and TEID of the vCPU's pgm record after a positive logical return.
    pgm: Option<(u16, u64)>,
}

/// Short hex of a buffer for failure messages: its length, the first 24 bytes and a
/// checksum.
fn short(b: &[u8]) -> String {
    let head: String = b.iter().take(24).map(|x| format!("{x:02x}")).collect();
    let sum = b.iter().fold(0u32, |a, &x| a.rotate_left(5) ^ x as u32);
    format!(
        "[{} bytes {head}{} sum {sum:08x}]",
        b.len(),
        if b.len() > 24 { ".." } else { "" }
    )
}

impl core::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Outcome {{ ret: {:#x}, data: {}, old: {}, pgm: {:x?} }}",
            self.ret,
            short(&self.data),
            short(&self.old),
            self.pgm
        )
    }
}

/// The reference state: memory, keys, registers, and the last step's outcome.
#[derive(Clone)]
struct Model {
    mem: Vec<u8>,
    keys: Vec<u8>,
    keys_in_use: bool,
    dat: bool,
    lap: bool,
    fpo: bool,
    spo: bool,
    prefix: u64,
    last: Outcome,
}

impl core::fmt::Debug for Model {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Model {{ dat: {}, lap: {}, fpo: {}, spo: {}, prefix: {:#x}, keys_in_use: {}, last: {:?} }}",
            self.dat, self.lap, self.fpo, self.spo, self.prefix, self.keys_in_use, self.last
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prot {
    La,
    Dat,
    Key,
}

/// A program interruption of a logical access: code, failing effective address, type.
#[derive(Clone, Copy, Debug)]
struct Fail {
    code: u16,
    ga: u64,
    prot: Option<Prot>,
}

impl Model {
    fn new(seed: u64) -> Self {
        let mut mem = vec![0u8; TOP as usize];
        let mut x = seed | 1;
        for b in mem.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
        let mut m = Self {
            mem,
            keys: vec![0; (TOP / PAGE) as usize],
            keys_in_use: false,
            dat: true,
            lap: false,
            fpo: false,
            spo: false,
            prefix: 0,
            last: Outcome::default(),
        };
        for hole in 0x40000..0x80000 {
            m.mem[hole] = 0;
        }
        // The segment table: 2048 invalid entries, then segments 0-3 valid.
        for sx in 0..2048 {
            m.put_u64(STO + sx * 8, 0x20);
        }
        // Candidate frames: data frames of both slots, the table frames, hole frames,
        // the prefix area and page 0.
        let mut frames: Vec<u64> = (0x10..0x40).chain(0x80..0x90).map(|f| f * PAGE).collect();
        frames.extend([
            0x8000, 0xC000, 0xD000, 0x0, 0x1000, 0x2000, 0x4_0000, 0x5_0000,
        ]);
        for sx in 0..SEGS {
            m.put_u64(STO + sx * 8, PT + sx * 0x800);
            for px in 0..256 {
                let page = sx * 256 + px;
                let f = frames[((page * 37 + seed % 97) % frames.len() as u64) as usize];
                let invalid = if (page + seed) % 13 == 5 { 0x400 } else { 0 };
                let prot = if (page + seed / 3) % 11 == 7 {
                    0x200
                } else {
                    0
                };
                m.put_u64(PT + sx * 0x800 + px * 8, f | invalid | prot);
            }
        }
        m
    }

    fn put_u64(&mut self, a: u64, v: u64) {
        self.mem[a as usize..a as usize + 8].copy_from_slice(&v.to_be_bytes());
    }

    fn get_u64(&self, a: u64) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.mem[a as usize..a as usize + 8]);
        u64::from_be_bytes(b)
    }

    fn key(&self, a: u64) -> u8 {
        self.keys[(a / PAGE) as usize]
    }

    fn mark(&mut self, a: u64, bits: u8) {
        if in_mem(a) {
            self.keys[(a / PAGE) as usize] |= bits;
        }
    }

    /// §5.7.
    fn real_to_abs(&self, r: u64) -> u64 {
        let p = self.prefix;
        if r < 0x2000 {
            r + p
        } else if r >= p && r < p + 0x2000 {
            r - p
        } else {
            r
        }
    }

    /// The §5.6 walk for this space (segment table, TL 3, not private, EDAT off):
    /// the absolute address or the code (and type, for protection). Sets R on the
    /// frames of the entries read (§10.3).
    fn walk(&mut self, v: u64, store: bool) -> Result<u64, (u16, Option<Prot>)> {
        if v >> 31 != 0 {
            return Err((0x38, None)); // RFX, RSX or RTX nonzero with DT segment
        }
        let ste_addr = STO + ((v >> 20) & 0x7FF) * 8;
        if !in_mem(ste_addr) {
            return Err((0x05, None));
        }
        self.mark(ste_addr, 0x04);
        let ste = self.get_u64(ste_addr);
        if ste & 0x20 != 0 {
            return Err((0x10, None));
        }
        if (ste >> 2) & 3 != 0 {
            return Err((0x12, None));
        }
        let mut prot = ste & 0x200 != 0;
        let pte_addr = (ste & !0x7FF).wrapping_add(((v >> 12) & 0xFF) * 8);
        if !in_mem(pte_addr) || !in_mem(pte_addr.wrapping_add(7)) {
            return Err((0x05, None));
        }
        self.mark(pte_addr, 0x04);
        let pte = self.get_u64(pte_addr);
        if pte & 0x400 != 0 {
            return Err((0x11, None));
        }
        if pte & 0x800 != 0 {
            return Err((0x12, None));
        }
        prot |= pte & 0x200 != 0;
        let abs = self.real_to_abs((pte & !0xFFF) | (v & 0xFFF));
        if store && prot {
            return Err((0x04, Some(Prot::Dat)));
        }
        if !in_mem(abs) {
            return Err((0x05, None));
        }
        Ok(abs)
    }

    /// The vCPU key rule (§8.3) for a fragment at effective `ga` of `len` bytes.
    fn key_ok(&self, key: u8, sk: u8, store: bool, ga: u64, len: u64) -> bool {
        let (acc, f) = (sk >> 4, sk & 0x08 != 0);
        key == 0
            || key == acc
            || (!store && (!f || (self.fpo && ga < 2048 && ga + len <= 2048)))
            || (self.spo && acc == 9)
    }

    /// The pgm record of a logical failure (§9.2, §9.3): code and TEID.
    fn record(f: Fail, store: bool, terminate: bool) -> (u16, u64) {
        let teid = match f.code {
            0x04 | 0x10 | 0x11 | 0x38 => {
                let bits = match (terminate, f.prot) {
                    (true, _) => 0,
                    (_, Some(Prot::La)) => 0x80,
                    (_, Some(Prot::Key)) => 0x08,
                    (_, Some(Prot::Dat)) => 0x04,
                    _ => 0,
                };
                (f.ga & !0xFFF) | (if store { 1 } else { 2 }) << 10 | bits
            }
            _ => 0,
        };
        (f.code, teid)
    }

    /// `KVM_S390_MEM_OP` logical read/write (§3.6, §5): returns the ioctl value, the
    /// data read, and the pgm record.
    fn logical(
        &mut self,
        gaddr: u64,
        size: usize,
        store: bool,
        key: u8,
        check_only: bool,
        data: &[u8],
    ) -> Outcome {
        // Fragments (§5.4): 64-bit mode, so the effective address is the address.
        let mut frags = Vec::new();
        let (mut ga, mut left) = (gaddr, size as u64);
        while left > 0 {
            let frag = (PAGE - (ga & 0xFFF)).min(left);
            frags.push((ga, frag));
            ga = ga.wrapping_add(frag);
            left -= frag;
        }
        let fail = |f: Fail, terminate: bool| Outcome {
            ret: f.code as i32,
            data: if store { data.to_vec() } else { vec![0; size] },
            old: Vec::new(),
            pgm: Some(Model::record(f, store, terminate)),
        };
        // Phase 1: LAP, translation (and the key check for CHECK_ONLY) per fragment.
        let mut gpas = Vec::new();
        for &(ga, len) in &frags {
            if store && self.lap && ga & !0x11FF == 0 {
                let f = Fail {
                    code: 4,
                    ga,
                    prot: Some(Prot::La),
                };
                return fail(f, false);
            }
            let gpa = if self.dat {
                match self.walk(ga, store) {
                    Ok(a) => a,
                    Err((code, prot)) => return fail(Fail { code, ga, prot }, false),
                }
            } else {
                let a = self.real_to_abs(ga);
                if !in_mem(a) {
                    return fail(
                        Fail {
                            code: 5,
                            ga,
                            prot: None,
                        },
                        false,
                    );
                }
                a
            };
            if check_only && !self.key_ok(key, self.key(gpa), store, ga, len) {
                let f = Fail {
                    code: 4,
                    ga,
                    prot: Some(Prot::Key),
                };
                return fail(f, false);
            }
            gpas.push(gpa);
        }
        if check_only {
            return Outcome {
                ret: 0,
                data: if store { data.to_vec() } else { vec![0; size] },
                ..Outcome::default()
            };
        }
        // Phase 2: per page, the key check, the move, R (and C).
        let mut read = vec![0u8; size];
        let mut done = 0usize;
        for (idx, (&(ga, len), &gpa)) in frags.iter().zip(&gpas).enumerate() {
            if !self.key_ok(key, self.key(gpa), store, ga, len) {
                let f = Fail {
                    code: 4,
                    ga,
                    prot: Some(Prot::Key),
                };
                return fail(f, store && idx > 0);
            }
            let (a, n) = (gpa as usize, len as usize);
            if store {
                self.mem[a..a + n].copy_from_slice(&data[done..done + n]);
                self.mark(gpa, 0x06);
            } else {
                read[done..done + n].copy_from_slice(&self.mem[a..a + n]);
                self.mark(gpa, 0x04);
            }
            done += n;
        }
        Outcome {
            ret: 0,
            data: if store { data.to_vec() } else { read },
            ..Outcome::default()
        }
    }

    /// `KVM_S390_MEM_OP` absolute read/write on the VM fd (§3.3, §6.1, §6.2).
    fn absolute(
        &mut self,
        gaddr: u64,
        size: usize,
        store: bool,
        key: u8,
        check_only: bool,
        data: &[u8],
    ) -> Outcome {
        let mut out = Outcome {
            ret: 0,
            data: if store { data.to_vec() } else { vec![0; size] },
            ..Outcome::default()
        };
        let mut read = vec![0u8; size];
        let (mut a, mut done) = (gaddr, 0usize);
        while done < size {
            let frag = ((PAGE - (a & 0xFFF)) as usize).min(size - done);
            if !in_mem(a) {
                out.ret = 5;
                return out;
            }
            let sk = self.key(a);
            if !(key == 0 || key == sk >> 4 || (!store && sk & 0x08 == 0)) {
                out.ret = 4;
                return out;
            }
            if !check_only {
                let i = a as usize;
                if store {
                    self.mem[i..i + frag].copy_from_slice(&data[done..done + frag]);
                    self.mark(a, 0x06);
                } else {
                    read[done..done + frag].copy_from_slice(&self.mem[i..i + frag]);
                    self.mark(a, 0x04);
                }
            }
            done += frag;
            a += frag as u64;
        }
        if !store && !check_only {
            out.data = read;
        }
        out
    }

    /// `KVM_S390_MEM_OP` absolute cmpxchg (§3.4, §7, §13.1 Q3).
    fn cmpxchg(&mut self, gaddr: u64, size: usize, new: &[u8], old: &[u8], key: u8) -> Outcome {
        let mut out = Outcome {
            ret: 0,
            data: new.to_vec(),
            old: old.to_vec(),
            pgm: None,
        };
        if gaddr & (size as u64 - 1) != 0 {
            out.ret = -22;
            return out;
        }
        if !in_mem(gaddr) {
            out.ret = 5;
            return out;
        }
        let sk = self.key(gaddr);
        if key != 0 && key != sk >> 4 {
            out.ret = 4;
            out.old = vec![0; size];
            return out;
        }
        let i = gaddr as usize;
        if self.mem[i..i + size] == *old {
            self.mem[i..i + size].copy_from_slice(new);
            self.mark(gaddr, 0x06);
        } else {
            out.old = self.mem[i..i + size].to_vec();
            self.mark(gaddr, 0x04);
        }
        out
    }

    /// `KVM_S390_SET_SKEYS` (flags 0, count ≥ 1, a valid buffer).
    fn set_skeys(&mut self, gfn: u64, keys: &[u8]) -> Outcome {
        if !self.keys_in_use {
            self.keys_in_use = true;
            self.keys.iter_mut().for_each(|k| *k = 0);
        }
        let ret = if keys.iter().any(|k| k & 1 != 0) {
            -22
        } else {
            let mut r = 0;
            for (i, &k) in keys.iter().enumerate() {
                let a = (gfn + i as u64) * PAGE;
                if !in_mem(a) {
                    r = -14;
                    break;
                }
                self.keys[(a / PAGE) as usize] = k;
            }
            r
        };
        Outcome {
            ret,
            data: keys.to_vec(),
            ..Outcome::default()
        }
    }

    /// `KVM_S390_GET_SKEYS`.
    fn get_skeys(&self, gfn: u64, count: usize) -> Outcome {
        let mut out = Outcome {
            data: vec![0; count],
            ..Outcome::default()
        };
        if !self.keys_in_use {
            out.ret = 1;
            return out;
        }
        for i in 0..count {
            let a = (gfn + i as u64) * PAGE;
            if !in_mem(a) {
                out.ret = -14;
                out.data = vec![0; count];
                return out;
            }
            out.data[i] = self.key(a);
        }
        out
    }

    /// `KVM_S390_KEYOP` (ISKE 1, RRBE 2, SSKE 3).
    fn keyop(&mut self, op: u8, addr: u64, key: u8) -> Outcome {
        if !in_mem(addr) {
            return Outcome {
                ret: -14,
                old: vec![key],
                ..Outcome::default()
            };
        }
        let i = (addr / PAGE) as usize;
        let old = self.keys[i];
        let result = match op {
            1 => old,
            2 => {
                self.keys[i] &= !0x04;
                old & 0x06
            }
            _ => {
                self.keys[i] = key & 0xFE;
                old
            }
        };
        Outcome {
            ret: 0,
            old: vec![result],
            ..Outcome::default()
        }
    }
}

/// A change to a table entry.
#[derive(Clone, Copy, Debug)]
enum Edit {
    /// Toggle the PTE invalid bit of virtual page `page`.
    PteInvalid(u64),
    /// Toggle the PTE DAT-protection bit.
    PteProtect(u64),
    /// Point the PTE at another frame (keeping its flags).
    PteFrame(u64, u64),
    /// Toggle the STE invalid bit of segment `s`.
    SteInvalid(u64),
    /// Toggle the STE DAT-protection bit.
    SteProtect(u64),
}

#[derive(Clone, Debug)]
enum Step {
    Logical {
        gaddr: u64,
        size: usize,
        store: bool,
        key: Option<u8>,
        check_only: bool,
        seed: u8,
    },
    Absolute {
        gaddr: u64,
        size: usize,
        store: bool,
        key: Option<u8>,
        check_only: bool,
        seed: u8,
    },
    Cmpxchg {
        gaddr: u64,
        size: usize,
        key: Option<u8>,
        /// Use the current memory value as `old` (so the exchange happens).
        matching: bool,
        seed: u8,
    },
    SetSkeys {
        gfn: u64,
        keys: Vec<u8>,
    },
    GetSkeys {
        gfn: u64,
        count: usize,
    },
    Keyop {
        op: u8,
        addr: u64,
        key: u8,
    },
    Edit(Edit),
    Dat(bool),
    Lap(bool),
    Fpo(bool),
    Spo(bool),
    Prefix(u64),
}

fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| seed.wrapping_mul(31).wrapping_add((i * 7) as u8))
        .collect()
}

fn key_strategy() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(0)),
        2 => prop::sample::select(vec![1u8, 3, 9]).prop_map(Some),
        1 => (0u8..16).prop_map(Some),
    ]
}

fn size_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 1usize..=16, 2 => 1usize..=4096, 2 => 4097usize..=9000]
}

/// Virtual or real addresses: page starts, page ends, the low-address and FPO ranges,
/// addresses beyond the mapped segments.
fn gaddr_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => (0u64..1024, 0u64..4096).prop_map(|(p, o)| p * PAGE + o),
        2 => (0u64..1100, 1u64..24).prop_map(|(p, o)| (p + 1) * PAGE - o),
        1 => 0u64..0x2400,
        1 => (0u64..TOP / PAGE + 4, 0u64..4096).prop_map(|(p, o)| p * PAGE + o),
    ]
}

fn abs_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => 0u64..TOP + 0x2000,
        1 => (0u64..TOP / PAGE, 1u64..24).prop_map(|(p, o)| (p + 1) * PAGE - o),
    ]
}

fn key_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => (prop::sample::select(vec![0u8, 1, 3, 9]), any::<bool>())
            .prop_map(|(acc, f)| acc << 4 | if f { 0x08 } else { 0 }),
        1 => any::<u8>().prop_map(|k| k & 0xFE),
        1 => any::<u8>(),
    ]
}

struct Reference;

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        any::<u64>().prop_map(Model::new).boxed()
    }

    fn transitions(_state: &Model) -> BoxedStrategy<Step> {
        prop_oneof![
            6 => (gaddr_strategy(), size_strategy(), any::<bool>(), key_strategy(), prop::bool::weighted(0.25), any::<u8>())
                .prop_map(|(gaddr, size, store, key, check_only, seed)| Step::Logical {
                    gaddr, size, store, key, check_only, seed
                }),
            3 => (abs_strategy(), size_strategy(), any::<bool>(), key_strategy(), prop::bool::weighted(0.25), any::<u8>())
                .prop_map(|(gaddr, size, store, key, check_only, seed)| Step::Absolute {
                    gaddr, size, store, key, check_only, seed
                }),
            2 => (abs_strategy(), 0u32..5, key_strategy(), any::<bool>(), any::<u8>(), prop::bool::weighted(0.9))
                .prop_map(|(gaddr, lg, key, matching, seed, align)| {
                    let size = 1usize << lg;
                    let gaddr = if align { gaddr & !(size as u64 - 1) } else { gaddr };
                    Step::Cmpxchg { gaddr, size, key, matching, seed }
                }),
            2 => (0u64..TOP / PAGE + 2, prop::collection::vec(key_byte(), 1..4))
                .prop_map(|(gfn, keys)| Step::SetSkeys { gfn, keys }),
            // Whole stretches of frames with a few distinct keys, so that multi-page
            // accesses meet differing keys (key failures past page 0, §9.4).
            1 => (0u64..0x30, prop::collection::vec(
                    prop::sample::select(vec![0x10u8, 0x18, 0x30, 0x90, 0x98, 0x00]), 16..64))
                .prop_map(|(gfn, keys)| Step::SetSkeys { gfn, keys }),
            1 => (0u64..TOP / PAGE + 2, 1usize..4).prop_map(|(gfn, count)| Step::GetSkeys { gfn, count }),
            2 => (1u8..4, abs_strategy(), key_byte()).prop_map(|(op, addr, key)| Step::Keyop { op, addr, key }),
            3 => prop_oneof![
                (0u64..1024).prop_map(Edit::PteInvalid),
                (0u64..1024).prop_map(Edit::PteProtect),
                (0u64..1024, 0u64..TOP / PAGE + 2).prop_map(|(p, f)| Edit::PteFrame(p, f * PAGE)),
                (0u64..SEGS).prop_map(Edit::SteInvalid),
                (0u64..SEGS).prop_map(Edit::SteProtect),
            ].prop_map(Step::Edit),
            1 => any::<bool>().prop_map(Step::Dat),
            1 => any::<bool>().prop_map(Step::Lap),
            1 => any::<bool>().prop_map(Step::Fpo),
            1 => any::<bool>().prop_map(Step::Spo),
            1 => prop::sample::select(vec![0u64, 0x2000, 0x4000, 0x10000, 0x50000, 0x82000])
                .prop_map(Step::Prefix),
        ]
        .boxed()
    }

    fn apply(mut m: Model, step: &Step) -> Model {
        m.last = match *step {
            Step::Logical {
                gaddr,
                size,
                store,
                key,
                check_only,
                seed,
            } => {
                let data = bytes(seed, size);
                m.logical(gaddr, size, store, key.unwrap_or(0), check_only, &data)
            }
            Step::Absolute {
                gaddr,
                size,
                store,
                key,
                check_only,
                seed,
            } => {
                let data = bytes(seed, size);
                m.absolute(gaddr, size, store, key.unwrap_or(0), check_only, &data)
            }
            Step::Cmpxchg {
                gaddr,
                size,
                key,
                matching,
                seed,
            } => {
                let new = bytes(seed, size);
                let old = cmpxchg_old(&m.mem, gaddr, size, matching, seed);
                m.cmpxchg(gaddr, size, &new, &old, key.unwrap_or(0))
            }
            Step::SetSkeys { gfn, ref keys } => m.set_skeys(gfn, keys),
            Step::GetSkeys { gfn, count } => m.get_skeys(gfn, count),
            Step::Keyop { op, addr, key } => m.keyop(op, addr, key),
            Step::Edit(e) => {
                let (at, v) = edit_target(e, |a| m.get_u64(a));
                m.put_u64(at, v);
                Outcome::default()
            }
            Step::Dat(on) => {
                m.dat = on;
                Outcome::default()
            }
            Step::Lap(on) => {
                m.lap = on;
                Outcome::default()
            }
            Step::Fpo(on) => {
                m.fpo = on;
                Outcome::default()
            }
            Step::Spo(on) => {
                m.spo = on;
                Outcome::default()
            }
            Step::Prefix(p) => {
                m.prefix = p;
                Outcome::default()
            }
        };
        m
    }
}

/// Cmpxchg's compare value: the current memory contents (if `matching` and in the
/// model's range) or a pattern.
fn cmpxchg_old(mem: &[u8], gaddr: u64, size: usize, matching: bool, seed: u8) -> Vec<u8> {
    if matching_in_memory(matching, gaddr, size) {
        mem[gaddr as usize..gaddr as usize + size].to_vec()
    } else {
        bytes(seed ^ 0x5A, size)
    }
}

/// Whether a "matching" cmpxchg takes its compare value from memory: only when all of
/// the operand is memory (an unaligned one may cross into the hole).
fn matching_in_memory(matching: bool, gaddr: u64, size: usize) -> bool {
    matching && in_mem(gaddr) && gaddr.checked_add(size as u64 - 1).is_some_and(in_mem)
}

/// The entry an edit changes and its new value.
fn edit_target(e: Edit, read: impl Fn(u64) -> u64) -> (u64, u64) {
    let pte = |p: u64| PT + (p / 256) * 0x800 + (p % 256) * 8;
    match e {
        Edit::PteInvalid(p) => (pte(p), read(pte(p)) ^ 0x400),
        Edit::PteProtect(p) => (pte(p), read(pte(p)) ^ 0x200),
        Edit::PteFrame(p, f) => (pte(p), (read(pte(p)) & 0xFFF) | f),
        Edit::SteInvalid(s) => (STO + s * 8, read(STO + s * 8) ^ 0x20),
        Edit::SteProtect(s) => (STO + s * 8, read(STO + s * 8) ^ 0x200),
    }
}

/// The system under test: the crate's VM and vCPU.
struct Sut {
    vm: Vm,
    vcpu: Vcpu,
}

impl Sut {
    fn sync_registers(&mut self, m: &Model) {
        let v = &mut self.vcpu;
        v.psw.mask = if m.dat { PSW_DAT } else { Psw::EA | Psw::BA };
        let mut c = 0xE0;
        if m.lap {
            c |= cr0::LOW_ADDRESS_PROTECTION;
        }
        if m.fpo {
            c |= cr0::FETCH_PROTECTION_OVERRIDE;
        }
        if m.spo {
            c |= cr0::STORAGE_PROTECTION_OVERRIDE;
        }
        v.cr[0] = c;
        v.prefix = m.prefix as u32;
    }

    fn check_state(&self, m: &Model, step: &Step) {
        for &(start, size) in &SLOTS {
            let mut got = vec![0u8; size as usize];
            self.vm
                .storage()
                .read(AbsoluteAddress(start), &mut got)
                .expect("slot");
            let want = &m.mem[start as usize..(start + size) as usize];
            if got != want {
                let i = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
                panic!(
                    "{step:?}: memory differs first at {:#x}: {:#04x}, reference {:#04x}",
                    start + i as u64,
                    got[i],
                    want[i]
                );
            }
            for f in 0..size / PAGE {
                let a = start + f * PAGE;
                let k = self.vm.storage_key(AbsoluteAddress(a)).expect("frame").0;
                assert_eq!(k, m.key(a), "{step:?}: key of frame {a:#x}");
            }
        }
        assert_eq!(
            self.vm.keys_in_use(),
            m.keys_in_use,
            "{step:?}: keys in use"
        );
    }
}

impl StateMachineTest for Sut {
    type SystemUnderTest = Sut;
    type Reference = Reference;

    fn init_test(m: &Model) -> Sut {
        let vm = Vm::new(&SLOTS, Facilities::default_set()).expect("memslots");
        for &(start, size) in &SLOTS {
            vm.storage()
                .write(
                    AbsoluteAddress(start),
                    &m.mem[start as usize..(start + size) as usize],
                )
                .expect("slot");
        }
        let mut vcpu = Vcpu::new();
        vcpu.cr[1] = Asce::new(STO, DesignationType::Segment, 3, 0).0;
        vcpu.tlb.set_enabled(true);
        let mut s = Sut { vm, vcpu };
        s.sync_registers(m);
        s
    }

    fn apply(mut s: Sut, m: &Model, step: Step) -> Sut {
        let got = match step.clone() {
            Step::Logical {
                gaddr,
                size,
                store,
                key,
                check_only,
                seed,
            } => {
                let mut op = if store {
                    MemOp::logical_write(gaddr, bytes(seed, size))
                } else {
                    MemOp::logical_read(gaddr, size as u32)
                };
                if let Some(k) = key {
                    op = op.key(k);
                }
                if check_only {
                    op = op.check_only();
                }
                let r = op.run_vcpu(&s.vm, &mut s.vcpu);
                Outcome {
                    ret: r.ret,
                    data: r.data,
                    old: Vec::new(),
                    pgm: r.pgm.map(|p| (p.code, p.teid.0)),
                }
            }
            Step::Absolute {
                gaddr,
                size,
                store,
                key,
                check_only,
                seed,
            } => {
                let mut op = if store {
                    MemOp::absolute_write(gaddr, bytes(seed, size))
                } else {
                    MemOp::absolute_read(gaddr, size as u32)
                };
                if let Some(k) = key {
                    op = op.key(k);
                }
                if check_only {
                    op = op.check_only();
                }
                let r = op.run_vm(&s.vm);
                Outcome {
                    ret: r.ret,
                    data: r.data,
                    ..Outcome::default()
                }
            }
            Step::Cmpxchg {
                gaddr,
                size,
                key,
                matching,
                seed,
            } => {
                let mut cur = vec![0u8; size];
                let _ = s.vm.storage().read(AbsoluteAddress(gaddr), &mut cur);
                // The reference took its memory before the step; so does this (the two
                // memories are equal, checked after every step).
                let old = if matching_in_memory(matching, gaddr, size) {
                    cur
                } else {
                    bytes(seed ^ 0x5A, size)
                };
                let mut op = MemOp::absolute_cmpxchg(gaddr, bytes(seed, size), old);
                if let Some(k) = key {
                    op = op.key(k);
                }
                let r = op.run_vm(&s.vm);
                Outcome {
                    ret: r.ret,
                    data: r.data,
                    old: r.old,
                    pgm: None,
                }
            }
            Step::SetSkeys { gfn, keys } => {
                let mut k = keys.clone();
                let ret = set_skeys(
                    &s.vm,
                    &KvmS390Skeys::new(gfn, k.len() as u64),
                    &UserBuffer::valid(&mut k),
                );
                Outcome {
                    ret,
                    data: keys,
                    ..Outcome::default()
                }
            }
            Step::GetSkeys { gfn, count } => {
                let mut k = vec![0u8; count];
                let ret = get_skeys(
                    &s.vm,
                    &KvmS390Skeys::new(gfn, count as u64),
                    &mut UserBuffer::valid(&mut k),
                );
                Outcome {
                    ret,
                    data: k,
                    ..Outcome::default()
                }
            }
            Step::Keyop { op, addr, key } => {
                let mut kop = KvmS390Keyop::new(op, addr, key);
                let ret = keyop(&s.vm, &mut kop);
                Outcome {
                    ret,
                    old: vec![kop.key],
                    ..Outcome::default()
                }
            }
            Step::Edit(e) => {
                let st = s.vm.storage();
                let (at, v) = edit_target(e, |a| st.read_u64(AbsoluteAddress(a)).expect("table"));
                st.write_u64(AbsoluteAddress(at), v).expect("table");
                Outcome::default()
            }
            Step::Dat(_) | Step::Lap(_) | Step::Fpo(_) | Step::Spo(_) | Step::Prefix(_) => {
                s.sync_registers(m);
                Outcome::default()
            }
        };
        assert_eq!(got, m.last, "{step:?} with {m:?}");
        s.check_state(m, &step);
        s
    }
}

prop_state_machine! {
    #![proptest_config(Config {
        cases: env_usize("ROBUST_CASES", 256) as u32,
        failure_persistence: None,
        max_shrink_iters: 2048,
        .. Config::default()
    })]

    /// Sequences of memops, key ioctls, table edits and register changes agree with
    /// the reference model in every return value, buffer, pgm record, byte and key.
    #[test]
    fn sequences_agree_with_the_reference(sequential 1..env_usize("ROBUST_STEPS", 64) => Sut);
}

/// A fixed sequence through every kind of step, so that a broken generator cannot hide
/// everything: the model and the crate agree on it too.
#[test]
fn fixed_sequence_agrees() {
    let steps = vec![
        Step::Logical {
            gaddr: 0x1FF8,
            size: 16,
            store: true,
            key: None,
            check_only: false,
            seed: 1,
        },
        Step::SetSkeys {
            gfn: 0x10,
            keys: vec![0x10, 0x98, 0x30],
        },
        Step::Logical {
            gaddr: 0x10_0FF0,
            size: 0x20,
            store: false,
            key: Some(1),
            check_only: true,
            seed: 2,
        },
        Step::Absolute {
            gaddr: 0x10FF0,
            size: 0x20,
            store: true,
            key: Some(1),
            check_only: false,
            seed: 3,
        },
        Step::Cmpxchg {
            gaddr: 0x11000,
            size: 8,
            key: Some(9),
            matching: true,
            seed: 4,
        },
        Step::Keyop {
            op: 2,
            addr: 0x11000,
            key: 0,
        },
        Step::Edit(Edit::PteInvalid(3)),
        Step::Lap(true),
        Step::Logical {
            gaddr: 0,
            size: 8,
            store: true,
            key: None,
            check_only: false,
            seed: 5,
        },
        Step::Dat(false),
        Step::Prefix(0x4000),
        Step::Logical {
            gaddr: 0x10,
            size: 0x30,
            store: false,
            key: None,
            check_only: false,
            seed: 6,
        },
        Step::GetSkeys {
            gfn: 0x10,
            count: 3,
        },
    ];
    let mut m = Model::new(7);
    let mut s = <Sut as StateMachineTest>::init_test(&m);
    for st in steps {
        m = Reference::apply(m, &st);
        s = <Sut as StateMachineTest>::apply(s, &m, st);
    }
}
