//! The data the guest reads: the parameter block at base + `PARAM_OFFSET` and the op blob
//! (`oracle/guest/layout.h` and `main.c` define the same layout).
#![forbid(unsafe_code)]

/// The lowcore (prefix 0): absolute 0 up to here belongs to the guest.
pub const LOWCORE_END: u64 = 0x2000;
/// The guest's default base address: its stub page (virtual = real), with code,
/// data and stack above (`oracle/guest/layout.h`).
pub const DEFAULT_BASE: u64 = 0x2000;
/// Size of the guest from its base.
pub const GUEST_SIZE: u64 = 0xe000;
/// Offset of the parameter block (magic and the blob's address) from the base.
pub const PARAM_OFFSET: u64 = 0xdf00;
/// Offset of the entry point from the base.
pub const ENTRY_OFFSET: u64 = 0x1000;
/// `"gaccess!"`.
pub const PARAM_MAGIC: u64 = 0x6761_6363_6573_7321;
/// `"GACC"`.
pub const BLOB_MAGIC: u32 = 0x4741_4343;
/// Blob format version.
pub const BLOB_VERSION: u32 = 1;
/// Header flag: print through DIAGNOSE 8 (Hercules).
pub const BLOB_F_DIAG8: u32 = 1;
/// Size of the blob header.
pub const HEADER_SIZE: usize = 32;
/// Size of one op record.
pub const OP_SIZE: usize = 96;

/// Control registers an access loads (CR0, CR1, CR2, CR5, CR7, CR8, CR13).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccessRegs {
    /// CR0, loaded last.
    pub cr0: u64,
    /// Primary ASCE.
    pub cr1: u64,
    /// DUCT origin (AR mode).
    pub cr2: u64,
    /// PASTE origin (AR mode).
    pub cr5: u64,
    /// Secondary ASCE.
    pub cr7: u64,
    /// Extended authorization index (AR mode).
    pub cr8: u64,
    /// Home ASCE.
    pub cr13: u64,
}

/// One op of the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// One load or store through the stub.
    Access {
        /// Operand size: 1, 2, 4 or 8.
        size: u8,
        /// Store (else fetch).
        store: bool,
        /// Base register of the instruction (the memop's `ar`); 0 means index r1 and
        /// no base.
        breg: u8,
        /// PSW mask: DAT, key, AS, EA/BA.
        psw: u64,
        /// Logical address.
        addr: u64,
        /// Value to store (right-aligned).
        value: u64,
        /// Control registers.
        regs: AccessRegs,
        /// ALET loaded into access register `breg`.
        alet: u32,
        /// Prefix register during the access (0: the guest's own).
        prefix: u32,
    },
    /// SET STORAGE KEY EXTENDED on the frame holding `addr`.
    Sske {
        /// Absolute address.
        addr: u64,
        /// Key byte.
        key: u8,
    },
    /// Copy bytes to absolute storage with DAT off and key 0.
    Write {
        /// Absolute address.
        addr: u64,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// INSERT STORAGE KEY EXTENDED: prints the key byte.
    Iske {
        /// Absolute address.
        addr: u64,
    },
    /// Print the doubleword at an absolute address.
    Read {
        /// Absolute address.
        addr: u64,
    },
    /// Clear `len` bytes at an absolute address.
    Zero {
        /// Absolute address.
        addr: u64,
        /// Byte count.
        len: u32,
    },
}

impl Op {
    fn kind(&self) -> u8 {
        match self {
            Op::Access { .. } => 1,
            Op::Sske { .. } => 2,
            Op::Write { .. } => 3,
            Op::Iske { .. } => 4,
            Op::Read { .. } => 5,
            Op::Zero { .. } => 6,
        }
    }
}

/// The parameter block the driver places at base + [`PARAM_OFFSET`].
pub fn param_block(blob_addr: u64) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..8].copy_from_slice(&PARAM_MAGIC.to_be_bytes());
    p[8..].copy_from_slice(&blob_addr.to_be_bytes());
    p
}

/// The size [`encode`] will produce for these ops.
pub fn encoded_size<'a>(ops: impl IntoIterator<Item = &'a Op>) -> usize {
    let mut n = HEADER_SIZE;
    let mut data = 0usize;
    for op in ops {
        n += OP_SIZE;
        if let Op::Write { bytes, .. } = op {
            data += bytes.len().div_ceil(8) * 8;
        }
    }
    n + data
}

/// Encode the op blob (big-endian, `struct blob` + `struct op` of main.c).
pub fn encode<'a>(ops: impl IntoIterator<Item = &'a Op> + Clone, diag8: bool) -> Vec<u8> {
    let n_ops = ops.clone().into_iter().count();
    let mut out = Vec::with_capacity(encoded_size(ops.clone()));
    out.extend_from_slice(&BLOB_MAGIC.to_be_bytes());
    out.extend_from_slice(&BLOB_VERSION.to_be_bytes());
    out.extend_from_slice(&(n_ops as u32).to_be_bytes());
    out.extend_from_slice(&(if diag8 { BLOB_F_DIAG8 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&[0u8; 16]);
    let mut data: Vec<u8> = Vec::new();
    let data_base = HEADER_SIZE + OP_SIZE * n_ops;
    for op in ops {
        let mut rec = [0u8; OP_SIZE];
        rec[0] = op.kind();
        let put = |rec: &mut [u8; OP_SIZE], off: usize, v: u64| {
            rec[off..off + 8].copy_from_slice(&v.to_be_bytes())
        };
        match op {
            Op::Access {
                size,
                store,
                breg,
                psw,
                addr,
                value,
                regs,
                alet,
                prefix,
            } => {
                rec[1] = *size;
                rec[2] = u8::from(*store);
                rec[3] = *breg;
                put(&mut rec, 8, *psw);
                put(&mut rec, 16, *addr);
                put(&mut rec, 24, *value);
                let crs = [
                    regs.cr0, regs.cr1, regs.cr2, regs.cr5, regs.cr7, regs.cr8, regs.cr13,
                ];
                for (i, v) in crs.iter().enumerate() {
                    put(&mut rec, 32 + 8 * i, *v);
                }
                rec[88..92].copy_from_slice(&alet.to_be_bytes());
                rec[92..96].copy_from_slice(&prefix.to_be_bytes());
            }
            Op::Sske { addr, key } => {
                put(&mut rec, 16, *addr);
                put(&mut rec, 24, u64::from(*key));
            }
            Op::Write { addr, bytes } => {
                rec[4..8].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
                put(&mut rec, 16, *addr);
                put(&mut rec, 24, (data_base + data.len()) as u64);
                data.extend_from_slice(bytes);
                while !data.len().is_multiple_of(8) {
                    data.push(0);
                }
            }
            Op::Iske { addr } | Op::Read { addr } => put(&mut rec, 16, *addr),
            Op::Zero { addr, len } => {
                rec[4..8].copy_from_slice(&len.to_be_bytes());
                put(&mut rec, 16, *addr);
            }
        }
        out.extend_from_slice(&rec);
    }
    out.extend_from_slice(&data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_guest() {
        let h = include_str!("../../oracle/guest/layout.h");
        for (name, v) in [
            ("GUEST_BASE", DEFAULT_BASE),
            ("GUEST_SIZE", GUEST_SIZE),
            ("PARAM_OFFSET", PARAM_OFFSET),
        ] {
            assert!(h.contains(&format!("#define {name:<16}{v:#x}")), "{name}");
        }
        assert!(h.contains(&format!("{PARAM_MAGIC:#x}")));
        assert!(h.contains(&format!("{BLOB_MAGIC:#x}")));
        let ld = include_str!("../../oracle/guest/guest.ld");
        assert!(ld.contains(&format!(". = GUEST_BASE + {ENTRY_OFFSET:#x};")));
    }

    #[test]
    fn encoding() {
        let ops = [
            Op::Write {
                addr: 0x1000,
                bytes: vec![1, 2, 3],
            },
            Op::Sske {
                addr: 0x5000,
                key: 0x36,
            },
        ];
        let b = encode(&ops, true);
        assert_eq!(b.len(), encoded_size(&ops));
        assert_eq!(&b[..4], b"GACC");
        assert_eq!(b[15], 1);
        assert_eq!(b[HEADER_SIZE], 3);
        assert_eq!(&b[HEADER_SIZE + 4..HEADER_SIZE + 8], &[0, 0, 0, 3]);
        let off = u64::from_be_bytes(b[HEADER_SIZE + 24..HEADER_SIZE + 32].try_into().unwrap());
        assert_eq!(&b[off as usize..off as usize + 3], &[1, 2, 3]);
    }
}
