//! A small guest derived from fuzz bytes: a few memslots with holes (one at 0, optional
//! ones near 2^44 and at the very end of the 64-bit space), storage keys, up to three
//! DAT spaces built with the crate's table builder and then damaged with raw entry
//! values, an access-register-translation chain, raw byte blobs, and a vCPU whose PSW,
//! control registers, access registers and prefix come from the input.

use super::input::Input;
use s390_gaccess::addr::AbsoluteAddress;
use s390_gaccess::dat::builder::{LeafFlags, SpaceBuilder};
use s390_gaccess::dat::{Asce, DesignationType, FrameSize, TableLevel};
use s390_gaccess::keys::StorageKey;
use s390_gaccess::vcpu::{Psw, SieIntercept, Vcpu, cr0};
use s390_gaccess::vm::{Facilities, Vm};

/// Page size.
pub const PAGE: u64 = 4096;

/// Virtual addresses worth mapping and accessing: low core, the prefix area, the
/// 24-bit, 31-bit and 32-bit edges, region boundaries and the end of the 64-bit space.
pub const VIRTS: [u64; 16] = [
    0,
    0x1000,
    0x2000,
    0x7000,
    0x10_0000,
    0xFF_F000,
    0x7FFF_F000,
    0x8000_0000,
    0xFFFF_F000,
    0x1_0000_0000,
    0x3FF_FFFF_F000,
    0x400_0000_0000,
    0x1F_FFFF_FFFF_F000,
    0x20_0000_0000_0000,
    0x8000_0000_0000_0000,
    0xFFFF_FFFF_FFFF_F000,
];

/// Fixed places of the access-register-translation structures in the slot at 0.
pub mod art {
    /// DUCT (CR2); the ALD is at +16.
    pub const DUCT: u64 = 0x3000;
    /// PASTE (CR5); the ALD is at +16.
    pub const PASTE: u64 = 0x3800;
    /// The DU access list (ALO 0x80, ALL 3: ALEN 0..31).
    pub const DU_LIST: u64 = 0x4000;
    /// The PASTE access list (ALO 0xA0, ALL 0: ALEN 0..7).
    pub const PASTE_LIST: u64 = 0x5000;
    /// The ASTE.
    pub const ASTE: u64 = 0x6000;
    /// The authority table.
    pub const AUTH: u64 = 0x6800;
}

/// The guest and what the harnesses need to aim accesses at it.
pub struct FuzzGuest {
    /// The machine.
    pub vm: Vm,
    /// vCPU 0.
    pub vcpu: Vcpu,
    /// The memslots `(start, size)`.
    pub slots: Vec<(u64, u64)>,
    /// The ASCEs of the spaces built (or attempted).
    pub asces: Vec<Asce>,
    /// Virtual pages that were mapped successfully.
    pub virts: Vec<u64>,
    /// ALETs that resolve through the ART chain, if one was built.
    pub alets: Vec<u32>,
}

impl FuzzGuest {
    /// A frame address inside some memslot.
    pub fn pick_frame(&self, inp: &mut Input<'_>) -> u64 {
        let (start, size) = self.slots[inp.below(self.slots.len() as u64) as usize];
        start + inp.below(size / PAGE) * PAGE
    }

    /// An absolute address: mostly in memory, sometimes just past a slot (a hole) or raw.
    pub fn pick_abs(&self, inp: &mut Input<'_>) -> u64 {
        match inp.below(8) {
            0..=5 => self.pick_frame(inp) + inp.below(PAGE),
            6 => {
                let (start, size) = self.slots[inp.below(self.slots.len() as u64) as usize];
                start.wrapping_add(size).wrapping_sub(inp.below(64))
            }
            _ => inp.u64(),
        }
    }

    /// A virtual page: a mapped one, an interesting one, or a raw one.
    pub fn pick_virt(&self, inp: &mut Input<'_>) -> u64 {
        match inp.below(4) {
            0 | 1 if !self.virts.is_empty() => {
                self.virts[inp.below(self.virts.len() as u64) as usize]
            }
            0..=2 => VIRTS[inp.below(VIRTS.len() as u64) as usize],
            _ => inp.u64() & !0xFFF,
        }
    }

    /// A guest address for an access: a picked page plus an offset that often lands
    /// near the page end, so that accesses cross pages.
    pub fn pick_gaddr(&self, inp: &mut Input<'_>) -> u64 {
        let page = self.pick_virt(inp);
        let off = match inp.below(4) {
            0 => 0,
            1 => PAGE - 1 - inp.below(16),
            _ => inp.below(PAGE),
        };
        page.wrapping_add(off)
    }
}

fn overlaps(slots: &[(u64, u64)], start: u64, size: u64) -> bool {
    let (a0, a1) = (start as u128, start as u128 + size as u128);
    slots
        .iter()
        .any(|&(s, z)| a0 < s as u128 + z as u128 && (s as u128) < a1)
}

fn pick_facilities(inp: &mut Input<'_>) -> Facilities {
    let f = inp.u8();
    let mut n = Vec::new();
    for (bit, fac) in [
        (0, Facilities::EDAT1),
        (1, Facilities::EDAT2),
        (2, Facilities::IEP),
        (3, Facilities::ESOP2),
    ] {
        // Mostly installed: EDAT and friends off is the rarer case.
        if f & (1 << bit) == 0 || f & 0x80 == 0 {
            n.push(fac);
        }
    }
    Facilities::from_numbers(&n)
}

fn pick_slots(inp: &mut Input<'_>) -> Vec<(u64, u64)> {
    // The slot at 0 holds the lowcore, the ART structures and the tables: 256..508 KiB.
    let mut slots = vec![(0u64, (64 + inp.below(64)) * PAGE)];
    for _ in 0..inp.below(4) {
        let start = (128 + inp.u16() as u64) * PAGE;
        let size = (1 + inp.below(16)) * PAGE;
        if !overlaps(&slots, start, size) {
            slots.push((start, size));
        }
    }
    let flags = inp.u8();
    if flags & 1 != 0 {
        // Ending exactly at 2^64.
        let pages = 1 + inp.below(4);
        slots.push((0u64.wrapping_sub(pages * PAGE), pages * PAGE));
    }
    if flags & 2 != 0 {
        // Straddling 16 TiB.
        slots.push(((1 << 44) - 2 * PAGE, 4 * PAGE));
    }
    slots
}

/// Build the guest; `None` when the input asks for an impossible layout.
pub fn build(inp: &mut Input<'_>) -> Option<FuzzGuest> {
    let facilities = pick_facilities(inp);
    let slots = pick_slots(inp);
    let vm = Vm::new(&slots, facilities).ok()?;
    let mut g = FuzzGuest {
        vm,
        vcpu: Vcpu::new(),
        slots,
        asces: Vec::new(),
        virts: Vec::new(),
        alets: Vec::new(),
    };
    build_keys(&mut g, inp);
    for i in 0..1 + inp.below(3) {
        build_space(&mut g, inp, i);
    }
    edit_entries(&g, inp);
    build_art(&mut g, inp);
    for _ in 0..inp.below(4) {
        let at = g.pick_abs(inp);
        let n = inp.below(64) as usize;
        let bytes = inp.bytes(n);
        let _ = g.vm.storage().write(AbsoluteAddress(at), &bytes);
    }
    build_vcpu(&mut g, inp);
    Some(g)
}

fn build_keys(g: &mut FuzzGuest, inp: &mut Input<'_>) {
    let k = inp.u8();
    if k & 1 == 0 {
        return;
    }
    g.vm.enable_keys();
    if k & 2 != 0 {
        // One key for every frame of one slot.
        let (start, size) = g.slots[inp.below(g.slots.len() as u64) as usize];
        let key = StorageKey(inp.u8() & 0xFE);
        for f in 0..size / PAGE {
            let _ = g.vm.set_storage_key(AbsoluteAddress(start + f * PAGE), key);
        }
    }
    for _ in 0..inp.below(16) {
        let at = g.pick_frame(inp);
        let key = StorageKey(inp.u8() & 0xFE);
        let _ = g.vm.set_storage_key(AbsoluteAddress(at), key);
    }
}

fn build_space(g: &mut FuzzGuest, inp: &mut Input<'_>, i: u64) {
    let dt = DesignationType::from_bits(inp.u8() as u64);
    let tl = inp.u8() & 3;
    let flags_byte = inp.u8();
    let mut flags = 0;
    for (bit, f) in [(0, Asce::P), (1, Asce::G), (2, Asce::S), (3, Asce::X)] {
        if flags_byte & (1 << bit) != 0 {
            flags |= f;
        }
    }
    if flags_byte & 0xF0 == 0xF0 {
        flags |= Asce::R;
    }
    let origin = match inp.below(8) {
        // Separate areas in the slot at 0 (they may still run into each other).
        0..=5 => 0x8000 + i * 0x1_8000 + inp.below(4) * 0x4000,
        6 => (inp.u32() as u64) << 12,
        _ => g.pick_frame(inp),
    };
    let Ok(mut b) = SpaceBuilder::new(g.vm.storage(), dt, origin, tl, flags) else {
        g.asces.push(Asce::new(origin, dt, tl, flags));
        return;
    };
    for _ in 0..inp.below(8) {
        let page = match inp.below(8) {
            0 => FrameSize::Size1M,
            1 => FrameSize::Size2G,
            _ => FrameSize::Size4K,
        };
        let step = page.bytes();
        let virt = g.pick_virt(inp) & !(step - 1);
        let abs = match inp.below(8) {
            0 => inp.u64(),
            _ => g.pick_frame(inp),
        } & !(step - 1);
        let leaf = inp.u8();
        let lf = LeafFlags {
            protect: leaf & 1 != 0,
            iep: leaf & 2 != 0,
        };
        if b.map(virt, abs, step, page, lf).is_ok() {
            g.virts.push(virt);
        }
    }
    g.asces.push(b.asce());
}

fn edit_entries(g: &FuzzGuest, inp: &mut Input<'_>) {
    for _ in 0..inp.below(8) {
        let kind = inp.below(4);
        let addr = if kind < 3 && !g.asces.is_empty() {
            let asce = g.asces[inp.below(g.asces.len() as u64) as usize];
            let level = TableLevel::ALL[inp.below(5) as usize];
            let virt = g.pick_virt(inp);
            match s390_gaccess::dat::builder::entry_address(g.vm.storage(), asce, virt, level) {
                Ok(a) => a.0,
                Err(_) => continue,
            }
        } else {
            g.pick_abs(inp) & !7
        };
        let old = g.vm.storage().read_u64(AbsoluteAddress(addr)).unwrap_or(0);
        let value = match inp.below(4) {
            0 => inp.u64(),
            1 => old ^ (1u64 << inp.below(64)),
            2 => old ^ (inp.u16() as u64),
            _ => (old & !0xFFF) | (inp.u16() as u64 & 0xFFF),
        };
        let _ = g.vm.storage().write_u64(AbsoluteAddress(addr), value);
    }
}

fn write_u32(vm: &Vm, at: u64, v: u32) {
    let _ = vm.storage().write(AbsoluteAddress(at), &v.to_be_bytes());
}

fn build_art(g: &mut FuzzGuest, inp: &mut Input<'_>) {
    if !inp.bool() || g.asces.is_empty() {
        return;
    }
    let vm = &g.vm;
    // ALDs: ALO = list / 128, ALL.
    write_u32(vm, art::DUCT + 16, ((art::DU_LIST / 128) << 7) as u32 | 3);
    write_u32(vm, art::PASTE + 16, ((art::PASTE_LIST / 128) << 7) as u32);
    let astesn = inp.u32();
    let asce = g.asces[inp.below(g.asces.len() as u64) as usize].0;
    let atl = inp.below(4);
    let aste_d0 = ((art::AUTH / 4) << 34) | (atl << 4) | ((inp.below(8) == 0) as u64) << 63;
    let _ = vm.storage().write_u64(AbsoluteAddress(art::ASTE), aste_d0);
    let _ = vm.storage().write_u64(AbsoluteAddress(art::ASTE + 8), asce);
    let _ = vm
        .storage()
        .write_u64(AbsoluteAddress(art::ASTE + 16), astesn as u64);
    let auth = inp.bytes(16);
    let _ = vm.storage().write(AbsoluteAddress(art::AUTH), &auth);
    for _ in 0..1 + inp.below(4) {
        let paste = inp.bool();
        let alen = if paste { inp.below(8) } else { inp.below(32) };
        let alesn = inp.u8() as u64;
        let e = inp.u8();
        let w0 = ((e & 1) as u64) << 63          // invalid
            | (((e >> 1) & 1) as u64) << 57      // fetch-only
            | (((e >> 2) & 1) as u64) << 56      // private
            | alesn << 48
            | (inp.u16() as u64) << 32; // ALEAX
        let sn = if e & 0x80 != 0 { inp.u32() } else { astesn };
        let w1 = ((art::ASTE / 64) << 38) | sn as u64;
        let list = if paste { art::PASTE_LIST } else { art::DU_LIST };
        let at = list + alen * 16;
        let _ = vm.storage().write_u64(AbsoluteAddress(at), w0);
        let _ = vm.storage().write_u64(AbsoluteAddress(at + 8), w1);
        let alet = (if paste { 0x0100_0000 } else { 0 }) | (alesn << 16) as u32 | alen as u32;
        g.alets.push(alet);
    }
}

fn build_vcpu(g: &mut FuzzGuest, inp: &mut Input<'_>) {
    let v = &mut g.vcpu;
    let p = inp.u8();
    let mut mask = if p & 1 != 0 { Psw::DAT } else { 0 };
    mask |= ((p as u64 >> 1) & 3) << Psw::AS_SHIFT;
    mask |= match (p >> 3) & 3 {
        0 => Psw::EA | Psw::BA,
        1 => Psw::BA,
        2 => 0,
        _ => Psw::EA,
    };
    if p & 0x20 != 0 {
        mask |= (inp.u8() as u64 & 0xF) << Psw::KEY_SHIFT;
    }
    if p & 0xC0 == 0xC0 {
        mask = inp.u64();
    }
    v.psw = Psw {
        mask,
        addr: inp.u64(),
    };
    let c = inp.u8();
    let mut cr0v = 0xE0;
    for (bit, m) in [
        (0, cr0::LOW_ADDRESS_PROTECTION),
        (1, cr0::FETCH_PROTECTION_OVERRIDE),
        (2, cr0::STORAGE_PROTECTION_OVERRIDE),
        (3, cr0::EDAT),
        (4, cr0::IEP),
    ] {
        if c & (1 << bit) != 0 {
            cr0v |= m;
        }
    }
    if c & 0xE0 == 0xE0 {
        cr0v = inp.u64();
    }
    v.cr[0] = cr0v;
    for cr in [1usize, 7, 13] {
        let pick = inp.u8();
        v.cr[cr] = if pick & 0xC0 == 0xC0 {
            inp.u64()
        } else if g.asces.is_empty() {
            0
        } else {
            let a = g.asces[pick as usize % g.asces.len()].0;
            // Occasionally flip ASCE bits: P, R, DT, TL, reserved ones.
            if pick & 0x30 == 0x30 {
                a ^ (1 << inp.below(12))
            } else {
                a
            }
        };
    }
    let o = inp.u8();
    v.cr[2] = if o & 1 != 0 { inp.u64() } else { art::DUCT };
    v.cr[5] = if o & 2 != 0 { inp.u64() } else { art::PASTE };
    v.cr[8] = if o & 4 != 0 {
        inp.u64()
    } else {
        (inp.u16() as u64) << 16
    };
    for i in 0..16 {
        let k = inp.below(8);
        v.ar[i] = match k {
            0..=2 if !g.alets.is_empty() => g.alets[inp.below(g.alets.len() as u64) as usize],
            0..=3 => k as u32, // 0, 1 (secondary), 2, 3
            4..=5 => 0,
            _ => inp.u32(),
        };
    }
    v.prefix = match inp.below(8) {
        0..=2 => 0,
        3 => 0x2000,
        4 => 0x8000,
        5 => (g.slots.last().map_or(0, |s| s.0) as u32) & !0x1FFF,
        _ => inp.u32(),
    };
    v.intercept = SieIntercept {
        icptcode: inp.u8(),
        ipa: inp.u16(),
        icptstatus: inp.u8(),
        pgmilc: inp.u8(),
    };
}
