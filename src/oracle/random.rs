//! A seeded generator of random scenarios for the oracle: four address spaces (one of
//! each designation type, random table length and private bit), 4 KiB and 1 MiB
//! mappings, random edits of table entries (invalid, protection, table type, table
//! length and offset, origins beyond memory, PTE bit 52, common-segment bits), random
//! storage keys, and accesses (fetch and store of 1, 2, 4, 8 bytes, random keys, access
//! register numbers, address-space modes, addressing modes, DAT on and off, CR0 LAP,
//! FPO, SPO and EDAT bits), and for access-register mode the tables of
//! access-register translation (§5.3.1): a DUCT (CR2) and a primary ASTE (CR5) whose
//! access list holds random ALEs (invalid, fetch-only, sequence numbers right or
//! wrong) designating random ASTEs (invalid, sequence numbers, the batch's spaces or a
//! real space), with random ALETs in the access registers.
//!
//! Each batch is a scenario file in the public format (JSON), so any batch can be
//! saved and rerun (`--save-scenarios`). The same seed gives the same scenarios.
#![forbid(unsafe_code)]

use crate::dat::art::ale;
use crate::dat::{Asce, DesignationType};
use crate::scenario::{Format, Scenario, parse_str};
use serde_json::{Value, json};

/// Memory of every random scenario.
pub const MEMORY: u64 = 32 << 20;
/// First table area; space `i` allocates from `TABLES + i * TABLE_AREA`. Memory below
/// it (above the guest's 64 KiB) stays free for the blob.
pub const TABLES: u64 = 0x80_0000;
/// Size of one space's table area.
pub const TABLE_AREA: u64 = 0x18_0000;
/// The data frames: `DATA .. MEMORY`.
pub const DATA: u64 = 0x100_0000;
/// The tables of access-register translation: the DUCT here, the primary ASTE (CR5,
/// for ALETs with the P bit) at `+ PASTE`, the access list at `+ ACCESS_LIST`, the
/// ASTEs at `+ ASTES`. Between the last table area and `DATA`, where no mapping and no
/// real access goes.
pub const ART: u64 = 0xF0_0000;
const PASTE: u64 = 0x100;
const ACCESS_LIST: u64 = 0x200;
const ASTES: u64 = 0x400;
/// ALEs in the access list (the ALL makes 8 to 32 of them valid ALENs).
const ALES: u64 = 32;
/// ASTEs: one per space and one real-space designation.
const ASTE_COUNT: u64 = 5;
const _: () = assert!(TABLES + 4 * TABLE_AREA <= ART && ART + 0x1000 <= DATA);

/// Where the guest's stub page will be (random scenarios leave low memory free, so
/// the guest gets its default base); edits keep off its translation path.
const STUB: u64 = super::blob::DEFAULT_BASE;

/// xorshift64* (the scenario format's generator, seeded the same way).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        let x = seed ^ 0x9E37_79B9_7F4A_7C15;
        Self(if x == 0 { 1 } else { x })
    }
    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// True with probability `pct` percent.
    pub fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    /// One element.
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

fn hex(v: u64) -> Value {
    Value::String(format!("{v:#x}"))
}

const TYPES: [(DesignationType, u32); 4] = [
    (DesignationType::RegionFirst, 64),
    (DesignationType::RegionSecond, 53),
    (DesignationType::RegionThird, 42),
    (DesignationType::Segment, 31),
];

/// The ALESN of each ALE of a batch's access list.
struct AccessList {
    alesn: Vec<u8>,
}

/// Lay out the tables of access-register translation at [`ART`] (§5.3.1; formats as
/// in `dat::art`): the DUCT's ALD (access-list origin and length), the ALEs and the
/// ASTEs, the first four designating the batch's spaces (`asces`), the fifth a real
/// space. Drawn from `rng`, a generator of their own.
fn art_tables(rng: &mut Rng, asces: &[u64], data: &mut Vec<Value>) -> AccessList {
    let u64s = |v: &[u64]| Value::Array(v.iter().map(|&x| hex(x)).collect());
    // Word 4 of the DUCT and of the primary ASTE: an ALD, both for the one access list
    // but with lengths of their own.
    for table in [ART, ART + PASTE] {
        let ald = (ART + ACCESS_LIST) | rng.below(4);
        data.push(json!({"at": hex(table + 16), "hex": format!("{ald:08x}")}));
    }
    let mut astesn = Vec::new();
    for k in 0..ASTE_COUNT {
        let asce = match asces.get(k as usize) {
            Some(&a) => a,
            None => Asce::R | 3,
        };
        let invalid = if rng.pct(20) { 1 << 63 } else { 0 };
        let sn = rng.below(8);
        astesn.push(sn);
        // Words 0-1 (I bit, AX...), the ASCE in words 2-3, the ASTESN in word 5.
        data.push(json!({"at": hex(ART + ASTES + k * 64), "u64": u64s(&[invalid, asce, sn])}));
    }
    let mut alesn = Vec::new();
    for j in 0..ALES {
        let k = rng.below(ASTE_COUNT);
        let sn = rng.below(4) as u8;
        alesn.push(sn);
        let invalid = if rng.pct(15) { ale::INVALID } else { 0 };
        let fetch_only = if rng.pct(20) { ale::FETCH_ONLY } else { 0 };
        let word0 = invalid | fetch_only | u64::from(sn) << 48;
        let aste_sn = if rng.pct(85) {
            astesn[k as usize]
        } else {
            (astesn[k as usize] + 1 + rng.below(7)) % 8
        };
        let word1 = (ART + ASTES + k * 64) << 32 | aste_sn;
        data.push(json!({"at": hex(ART + ACCESS_LIST + j * 16), "u64": u64s(&[word0, word1])}));
    }
    AccessList { alesn }
}

impl AccessList {
    /// A random ALET: 0 or 1 (the primary and secondary spaces), one naming an ALE
    /// with its ALESN or another, an ALEN beyond the list, or bits 0-6 set; a tenth
    /// with the P bit (the primary ASTE's list).
    fn alet(&self, rng: &mut Rng) -> u32 {
        let p = if rng.pct(10) { 0x0100_0000 } else { 0 };
        p | match rng.below(20) {
            0 | 1 => 0,
            2 => 1,
            // Bits 0-6.
            3 => 0x0200_0000 << rng.below(7) | rng.below(ALES) as u32,
            _ => {
                let alen = rng.below(ALES + 4);
                let sn = match self.alesn.get(alen as usize) {
                    Some(&sn) if rng.pct(80) => sn,
                    _ => rng.below(4) as u8,
                };
                u32::from(sn) << 16 | alen as u32
            }
        }
    }
}

/// One mapping the generator made.
#[derive(Clone, Debug)]
struct Mapping {
    virt: u64,
    abs: u64,
    size: u64,
    large: bool,
    /// Pages (offsets in the mapping) that have data and keys.
    hot: Vec<u64>,
}

#[derive(Clone, Debug)]
struct Space {
    bits: u32,
    tl: u64,
    maps: Vec<Mapping>,
}

impl Space {
    /// One past the highest address the ASCE can translate with its table length.
    fn limit(&self) -> u128 {
        let top2_shift = self.bits - 2;
        (u128::from(self.tl) + 1) << top2_shift
    }
}

/// Whether the entry for `v` at `level` (0 = the space's top level, counting down to
/// the page level) is one the stub's walk uses.
fn on_stub_path(bits: u32, v: u64, level_from_top: u32) -> bool {
    // Index shifts from the top level of this space down to the page level.
    let shifts: Vec<u32> = [53u32, 42, 31, 20, 12]
        .into_iter()
        .filter(|&s| s < bits)
        .collect();
    let idx = |s: u32, x: u64| {
        if s == 12 {
            (x >> 12) & 0xff
        } else {
            (x >> s) & 0x7ff
        }
    };
    shifts
        .iter()
        .take(level_from_top as usize + 1)
        .all(|&s| idx(s, v) == idx(s, STUB))
}

/// Generate one batch: a scenario with `count` accesses.
pub fn batch(seed: u64, index: usize, count: usize) -> (String, String) {
    let mut rng = Rng::new(seed.wrapping_mul(0x100_0000_01b3) ^ (index as u64).wrapping_add(1));
    let name = format!("random-{seed}-{index}");
    let mut spaces = Vec::new();
    let mut space_json = Vec::new();
    let mut keys = Vec::new();
    let mut data = Vec::new();
    let mut next_frame = DATA;
    let mut frame_keys: Vec<(u64, u8)> = Vec::new();
    let mut frames: Vec<u64> = Vec::new();

    // Data frames: 4 KiB frames from DATA up, 1 MiB frames from the top down.
    let mut next_large = MEMORY - (1 << 20);
    let mut asces = Vec::new();
    for (i, &(dt, bits)) in TYPES.iter().enumerate() {
        let tl = if rng.pct(70) { 3 } else { rng.below(4) };
        let private = rng.pct(25);
        asces.push(
            Asce::new(
                TABLES + i as u64 * TABLE_AREA,
                dt,
                tl as u8,
                if private { Asce::P } else { 0 },
            )
            .0,
        );
        let mut sp = Space {
            bits,
            tl,
            maps: Vec::new(),
        };
        let mut maps = Vec::new();
        let mut small_pages = std::collections::BTreeSet::new();
        let mut large_segs = std::collections::BTreeSet::new();
        small_pages.insert(STUB >> 12);
        if rng.pct(50) {
            for va in [0u64, 0x1000] {
                let abs = next_frame;
                next_frame += 0x1000;
                small_pages.insert(va >> 12);
                maps.push(json!({"virt": hex(va), "abs": hex(abs), "size": "4K", "page": "4K"}));
                sp.maps.push(Mapping {
                    virt: va,
                    abs,
                    size: 0x1000,
                    large: false,
                    hot: vec![0],
                });
            }
        }
        let n_maps = 8 + rng.below(8);
        let limit = sp.limit().min(u128::from(u64::MAX)) as u64;
        let mut tries = 0;
        while sp.maps.len() < n_maps as usize && tries < 200 {
            tries += 1;
            let class_limit = match rng.below(3) {
                0 => 16 << 20,
                1 => 1 << 31,
                _ => limit,
            }
            .min(limit);
            let large = rng.pct(15);
            let virt = if large {
                (rng.next_u64() % class_limit) & !0xf_ffff
            } else {
                (rng.next_u64() % class_limit) & !0xfff
            };
            let pages = if large { 1 } else { 1 + rng.below(3) };
            let size = if large { 1 << 20 } else { pages << 12 };
            if u128::from(virt) + u128::from(size) > u128::from(limit) {
                continue;
            }
            let seg = virt >> 20;
            if large {
                if seg == 0
                    || large_segs.contains(&seg)
                    || small_pages.iter().any(|p| p >> 8 == seg)
                {
                    continue;
                }
                if next_large < next_frame + (1 << 20) {
                    continue;
                }
            } else if (0..pages).any(|k| {
                let p = (virt >> 12) + k;
                small_pages.contains(&p) || large_segs.contains(&(p >> 8)) || (p >> 8) != seg
            }) {
                continue;
            }
            let beyond = rng.pct(8);
            let abs = if large {
                if beyond {
                    0x4000_0000 + (rng.below(64) << 20)
                } else {
                    let a = next_large;
                    next_large -= 1 << 20;
                    a
                }
            } else if beyond {
                0x4000_0000 + (rng.below(1 << 16) << 12)
            } else {
                let a = next_frame;
                next_frame += size;
                a
            };
            if large {
                large_segs.insert(seg);
            } else {
                for k in 0..pages {
                    small_pages.insert((virt >> 12) + k);
                }
            }
            let protect = rng.pct(20);
            maps.push(json!({
                "virt": hex(virt), "abs": hex(abs), "size": hex(size),
                "page": if large { "1M" } else { "4K" }, "protect": protect,
            }));
            let hot = if large {
                vec![0, (1 + rng.below(255)) << 12]
            } else {
                (0..pages).map(|k| k << 12).collect()
            };
            sp.maps.push(Mapping {
                virt,
                abs,
                size,
                large,
                hot,
            });
        }
        // Data and keys of the frames behind the mappings (inside memory).
        for m in &sp.maps {
            for &h in &m.hot {
                let f = m.abs + h;
                if f + 0x1000 > MEMORY || f < DATA {
                    continue;
                }
                data.push(json!({"at": hex(f), "random": rng.next_u64() >> 1, "len": 4096}));
                frames.push(f);
                if rng.pct(60) {
                    let acc = if rng.pct(30) { 0 } else { rng.below(16) as u8 };
                    let byte = (acc << 4) | if rng.pct(40) { 8 } else { 0 };
                    keys.push(json!({"at": hex(f), "byte": hex(u64::from(byte))}));
                    frame_keys.push((f, byte));
                }
            }
        }
        // Edits: never on the stub's path; deepest level first so that every edit's
        // walk still reaches its entry.
        let levels: Vec<&str> = [
            "region-first",
            "region-second",
            "region-third",
            "segment",
            "page",
        ]
        .into_iter()
        .skip(i)
        .collect();
        let mut edits: Vec<(usize, Value)> = Vec::new();
        let small: Vec<&Mapping> = sp.maps.iter().filter(|m| !m.large).collect();
        for _ in 0..rng.below(7) {
            if small.is_empty() {
                break;
            }
            let m = *rng.pick(&small);
            let v = m.virt + (rng.below(m.size >> 12) << 12);
            let li = rng.below(levels.len() as u64) as usize;
            if on_stub_path(bits, v, li as u32) {
                continue;
            }
            let level = levels[li];
            let change = match level {
                "page" => match rng.below(5) {
                    0 | 1 => json!({"set": "0x400"}),
                    2 => json!({"set": "0x200"}),
                    3 => json!({"set": "0x800"}),
                    _ => json!({"value": hex(0x7000_0000 + (rng.below(256) << 12))}),
                },
                "segment" => match rng.below(6) {
                    0 | 1 => json!({"set": "0x20"}),
                    2 => json!({"set": "0x200"}),
                    3 => json!({"set": "0x10"}),
                    4 => json!({"set": hex(4 << rng.below(2))}),
                    _ => json!({"value": hex(0x2000_0000)}),
                },
                _ => match rng.below(7) {
                    0 | 1 => json!({"set": "0x20"}),
                    2 => json!({"set": "0x200"}),
                    3 => {
                        let right = 3 - (i + li) as u64;
                        let wrong = (right + 1 + rng.below(3)) % 4;
                        json!({"clear": "0xc", "set": hex(wrong << 2)})
                    }
                    4 => json!({"clear": "0x3"}),
                    5 => json!({"set": hex(0x40 << rng.below(2))}),
                    _ => json!({"value": hex(0x3000_0000 | ((3 - (i + li) as u64) << 2) | 3)}),
                },
            };
            let mut e = json!({"virt": hex(v), "level": level});
            for (k, val) in change.as_object().into_iter().flatten() {
                e[k] = val.clone();
            }
            edits.push((li, e));
        }
        edits.sort_by_key(|e| std::cmp::Reverse(e.0));
        space_json.push(json!({
            "name": format!("s{i}"), "type": dt.name(), "tables": hex(TABLES + i as u64 * TABLE_AREA),
            "tl": tl, "private": private, "map": maps,
            "edit": edits.into_iter().map(|e| e.1).collect::<Vec<_>>(),
        }));
        spaces.push(sp);
    }

    // Access-register translation tables, from a generator of their own.
    let mut art_rng = Rng::new(seed ^ 0x4152_5400 ^ (index as u64) << 32);
    let access_list = art_tables(&mut art_rng, &asces, &mut data);

    // Steps.
    let mut steps = Vec::new();
    let key_values: Vec<u8> = frame_keys.iter().map(|k| k.1 >> 4).collect();
    let mut state = (true, 0u64, 64u32, [0usize, 0, 0]);
    for n in 0..count {
        if n == 0 || rng.pct(25) {
            let dat = rng.pct(85);
            // Primary, access-register, secondary, home (QEMU skips AR mode).
            let space = match rng.below(10) {
                0..=3 => 0,
                4 => 1,
                5 | 6 => 2,
                _ => 3,
            };
            let amode = match rng.below(20) {
                0 | 1 => 24,
                2..=6 => 31,
                _ => 64,
            };
            let mut cr0 = 0xe0u64;
            for (bit, p) in [(35u32, 35u64), (38, 25), (39, 25), (40, 50)] {
                if rng.pct(p) {
                    cr0 |= 1 << (63 - bit);
                }
            }
            let mut cr = json!({"0": hex(cr0), "2": hex(ART), "5": hex(ART + PASTE)});
            let mut which = [0usize; 3];
            for (j, r) in ["1", "7", "13"].iter().enumerate() {
                which[j] = rng.below(5) as usize;
                cr[*r] = if which[j] == 4 {
                    hex(0x20 | if rng.pct(50) { 0x100 } else { 0 })
                } else {
                    Value::String(format!("space:s{}", which[j]))
                };
            }
            let as_name = ["primary", "ar", "secondary", "home"][space as usize];
            let mut set = json!({"psw": {"dat": dat, "as": as_name, "amode": amode}, "cr": cr});
            if space == 1 {
                let ars: serde_json::Map<String, Value> = (1..16)
                    .map(|r| {
                        (
                            r.to_string(),
                            hex(u64::from(access_list.alet(&mut art_rng))),
                        )
                    })
                    .collect();
                set["ar"] = Value::Object(ars);
            }
            steps.push(json!({ "set": set }));
            state = (dat, space, amode, which);
        }
        let (dat, space, amode, which) = state;
        let size = *rng.pick(&[1u64, 2, 4, 8]);
        let store = rng.pct(45);
        let data_space = match space {
            0 => which[0],
            // AR mode: the space is the ALET's; any of them (or a real address).
            1 => art_rng.below(5) as usize,
            2 => which[1],
            _ => which[2],
        };
        let mut gaddr = if !dat || data_space == 4 {
            // Real addresses: data frames, low addresses, beyond memory.
            match rng.below(10) {
                0..=6 if !frames.is_empty() => *rng.pick(&frames) + rng.below(4097 - size),
                7 => rng.below(0x200 - size) + if rng.pct(50) { 0x1000 } else { 0 },
                _ => MEMORY + (rng.below(1 << 20) << 12) + rng.below(4097 - size),
            }
        } else {
            let sp = &spaces[data_space];
            // Mostly within a page; sometimes across a page boundary (two fragments).
            let off = if size > 1 && rng.pct(6) {
                4096 - 1 - rng.below(size - 1)
            } else {
                rng.below(4097 - size)
            };
            match rng.below(20) {
                0..=12 if !sp.maps.is_empty() => {
                    let m = rng.pick(&sp.maps);
                    m.virt + *rng.pick(&m.hot) + off
                }
                13 | 14 if !sp.maps.is_empty() => {
                    let m = rng.pick(&sp.maps);
                    let d = *rng.pick(&[0x1000u64, 1 << 20, 1 << 31]);
                    let v = if rng.pct(50) {
                        m.virt.wrapping_add(m.size).wrapping_add(d - 0x1000)
                    } else {
                        m.virt.wrapping_sub(d)
                    };
                    v & !0xfff | off
                }
                15 | 16 => rng.below(0x200 - size) + if rng.pct(50) { 0x1000 } else { 0 },
                17 | 18 => {
                    (rng.next_u64() % sp.limit().min(u128::from(u64::MAX)) as u64) & !0xfff | off
                }
                _ => rng.next_u64() & !0xfff | off,
            }
        };
        if amode != 64 && rng.pct(25) {
            gaddr |= rng.next_u64() << if amode == 24 { 24 } else { 31 };
        }
        let mut m = json!({
            "op": if store { "logical-write" } else { "logical-read" },
            "gaddr": hex(gaddr), "size": size,
        });
        let mut flags = Vec::new();
        if rng.pct(75) {
            flags.push("skey-protection");
            let key = if rng.pct(40) && !key_values.is_empty() {
                *rng.pick(&key_values)
            } else {
                rng.below(16) as u8
            };
            m["key"] = json!(key);
        }
        if rng.pct(10) {
            flags.push("inject-exception");
        }
        m["flags"] = json!(flags);
        if rng.pct(50) {
            m["ar"] = json!(rng.below(16));
        }
        if store {
            m["data"] = json!({"hex": (0..size).map(|_| format!("{:02x}", rng.below(256))).collect::<String>()});
        }
        steps.push(json!({"memop": m}));
    }
    let sc = json!({
        "name": name,
        "vm": {"memory": hex(MEMORY), "storage-keys": true, "key": keys, "data": data},
        "space": space_json,
        "step": steps,
    });
    (name, serde_json::to_string_pretty(&sc).unwrap_or_default())
}

/// Parse a generated batch.
pub fn parse(name: &str, text: &str) -> Result<Scenario, String> {
    parse_str(text, Format::Json, &format!("{name}.json")).map_err(|e| e.to_string())
}
