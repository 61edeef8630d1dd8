//! One translation explained step by step (`s390-gaccess translate`): the effective
//! address (§5.1), the ASCE selection with access-register translation (§5.2, §5.3),
//! low-address protection (§8.1), every DAT table entry read with its address, raw value,
//! decoded fields and the checks made on it in §5.6's order, prefixing (§5.7), the key
//! check (§8.3) and the outcome with its TEID decoded (§9.2, §9.3).
//!
//! The outcome is the engine's ([`translate::translate`]); the narration re-reads the
//! entries the engine's walk traced and states each check. Should the two ever disagree,
//! the text says so rather than hide it.
#![forbid(unsafe_code)]

use std::fmt::Write as _;

use super::report::{as_name, code_name, key_text, pgm_text};
use super::run::{BuiltSpace, hex64};
use crate::addr::{AbsoluteAddress, RealAddress};
use crate::dat::art::alet as alet_bits;
use crate::dat::{
    Asce, DesignationType, PageTableEntry, RegionTableEntry, SegmentTableEntry, TableLevel,
};
use crate::exception::{AccessError, AccessMode};
use crate::keys::AccessKey;
use crate::protection;
use crate::translate::{self, TranslationReport};
use crate::vcpu::{AddressSpaceControl, AddressingMode, Psw, Vcpu, cr0};
use crate::vm::{Facilities, Vm};

/// A sink of indented lines.
struct Text {
    out: String,
}

impl Text {
    fn head(&mut self, s: impl AsRef<str>) {
        let _ = writeln!(self.out, "{}", s.as_ref());
    }
    fn line(&mut self, s: impl AsRef<str>) {
        let _ = writeln!(self.out, "  {}", s.as_ref());
    }
    fn sub(&mut self, s: impl AsRef<str>) {
        let _ = writeln!(self.out, "    {}", s.as_ref());
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn bit(b: bool) -> u8 {
    u8::from(b)
}

fn ok(b: bool) -> &'static str {
    if b { "ok" } else { "FAILS" }
}

/// The name a space is known by, if `asce` is one of the scenario's.
fn space_of(spaces: &[BuiltSpace], asce: u64) -> String {
    spaces
        .iter()
        .find(|s| s.asce.0 == asce)
        .map(|s| format!(" (space \"{}\")", s.name))
        .unwrap_or_default()
}

fn asce_fields(a: Asce) -> String {
    format!(
        "origin {:#x}, DT {} ({}), TL {}, G {}, P {}, S {}, X {}, R {}",
        a.origin(),
        a.dt() as u8,
        a.dt().name(),
        a.tl(),
        bit(a.0 & Asce::G != 0),
        bit(a.private()),
        bit(a.0 & Asce::S != 0),
        bit(a.0 & Asce::X != 0),
        bit(a.real_space()),
    )
}

/// Explain the translation of logical address `gaddr` for `mode` with access key `key`
/// through access register `ar`, on the current state of `vm` and `vcpu`. Reference
/// bits are set as the translation sets them (§10.3). `spaces` names known ASCEs.
pub fn explain(
    vm: &Vm,
    vcpu: &Vcpu,
    spaces: &[BuiltSpace],
    gaddr: u64,
    ar: u8,
    mode: AccessMode,
    key: AccessKey,
) -> String {
    let report = translate::translate(vm, vcpu, gaddr, ar, mode, key);
    let mut t = Text { out: String::new() };
    let mode_name = if mode.is_store() { "store" } else { "fetch" };
    t.head(format!(
        "Translation of logical address {gaddr:#018x} for a {mode_name} with access key {} through AR {ar}",
        key.value()
    ));
    t.head("");
    let narrated = narrate(&mut t, vm, vcpu, spaces, &report, ar, mode, key);
    t.head("");
    t.head("Result");
    match &report.result {
        Ok((a, frame)) => {
            t.line(format!(
                "absolute address {} ({} frame at {:#x})",
                hex64(a.0),
                frame.name(),
                a.0 & !(frame.bytes() - 1)
            ));
        }
        Err(AccessError::Program(p)) => {
            t.line(pgm_text(&p.info));
            if p.code.records_teid_address() {
                let teid = p.info.teid;
                t.sub(format!("TEID {}", hex64(teid.0)));
                t.sub(format!("  bits 0-51:     address {:#x}", teid.address()));
                t.sub(format!(
                    "  bits 52-53:    FSI {:02b} ({})",
                    (teid.0 >> 10) & 3,
                    match (teid.0 >> 10) & 3 {
                        1 => "store",
                        2 => "fetch",
                        0 => "none",
                        _ => "reserved",
                    }
                ));
                if p.code.0 == 4 {
                    let (b56, b60, b61) = teid.protection_bits();
                    t.sub(format!(
                        "  bits 56,60,61: {}{}{}, {} (ESOP-2 reading, §9.3)",
                        bit(b56),
                        bit(b60),
                        bit(b61),
                        teid.protection_meaning()
                    ));
                }
                t.sub(format!(
                    "  bits 62-63:    AS {:02b} ({}: the PSW's AS bits as they are, §9.2)",
                    teid.address_space(),
                    as_name(teid.address_space())
                ));
            }
            if p.code.records_access_id() {
                t.sub(format!(
                    "exception access id {} (the memop's ar, §9.3)",
                    p.info.exc_access_id
                ));
            }
        }
        Err(AccessError::Errno(e)) => t.line(format!("{} ({})", e.ret(), e.name())),
    }
    let engine = match &report.result {
        Ok(_) => None,
        Err(AccessError::Program(p)) => Some(i64::from(p.code.0)),
        Err(AccessError::Errno(e)) => Some(i64::from(e.ret())),
    };
    if narrated != engine {
        t.line(format!(
            "note: the step-by-step account above ended with {narrated:?}, the engine with {engine:?}; please report this"
        ));
    }
    t.out
}

/// The narration; returns the code (or negative errno) it concluded with, `None` for
/// success.
#[allow(clippy::too_many_arguments)]
fn narrate(
    t: &mut Text,
    vm: &Vm,
    vcpu: &Vcpu,
    spaces: &[BuiltSpace],
    report: &TranslationReport,
    ar: u8,
    mode: AccessMode,
    key: AccessKey,
) -> Option<i64> {
    // ----- §5.1 -----
    let psw = &vcpu.psw;
    t.head("Effective address (§5.1)");
    let amode = match psw.addressing_mode() {
        AddressingMode::Bits64 => "64-bit",
        AddressingMode::Bits31 => "31-bit",
        AddressingMode::Bits24 if psw.mask & Psw::EA != 0 => {
            "24-bit (EA=1 BA=0 is invalid; treated as 24-bit, §11 item 13)"
        }
        AddressingMode::Bits24 => "24-bit",
    };
    t.line(format!(
        "PSW mask {:#018x}: DAT {}, address space {} (AS {:02b}), {amode} addressing, key {}, {} state",
        psw.mask,
        if psw.dat() { "on" } else { "off" },
        psw.address_space().name(),
        psw.as_bits(),
        psw.key(),
        if psw.problem_state() { "problem" } else { "supervisor" }
    ));
    let ga = report.effective.0;
    t.line(format!(
        "effective address {} = {:#x}{}",
        hex64(ga),
        report.logical,
        match psw.addressing_mode() {
            AddressingMode::Bits64 => " (unchanged)".to_owned(),
            AddressingMode::Bits31 => " & 0x7fffffff".to_owned(),
            AddressingMode::Bits24 => " & 0xffffff".to_owned(),
        }
    ));

    // ----- §5.2 / §5.3 -----
    t.head("");
    t.head("ASCE selection (§5.2)");
    let asce = if !psw.dat() {
        t.line("DAT is off: the ASCE is the real-space value 0x20 (R only); no AR processing (§5.2 step 1)");
        Asce::REAL_SPACE
    } else {
        let chosen = match psw.address_space() {
            AddressSpaceControl::Primary => Some((1, "primary space mode")),
            AddressSpaceControl::Secondary => Some((7, "secondary space mode")),
            AddressSpaceControl::Home => Some((13, "home space mode")),
            AddressSpaceControl::AccessRegister => None,
        };
        match chosen {
            Some((cr, why)) => {
                t.line(format!(
                    "{why}: ASCE = CR{cr} = {}{}",
                    hex64(vcpu.cr[cr]),
                    space_of(spaces, vcpu.cr[cr])
                ));
                Asce(vcpu.cr[cr])
            }
            None => match narrate_art(t, vcpu, spaces, report, ar, mode) {
                Ok(a) => a,
                Err(code) => return Some(code),
            },
        }
    };
    if psw.dat() {
        t.line(format!("ASCE {}: {}", hex64(asce.0), asce_fields(asce)));
    }
    if let Some(a) = report.asce
        && a != asce
    {
        t.line(format!("note: the engine selected ASCE {}", hex64(a.0)));
    }

    // ----- §8.1 -----
    t.head("");
    t.head("Low-address protection (§8.1, §5.5)");
    if mode.is_store() {
        let cr0_lap = vcpu.cr0(cr0::LOW_ADDRESS_PROTECTION);
        let exempt = psw.dat() && asce.private();
        let low = protection::is_low_address(ga);
        t.line(format!(
            "CR0 bit 35 (LAP) = {}; DAT on with a private ASCE exempts: {}; address in 0..511 or 4096..4607: {}",
            bit(cr0_lap),
            yes(exempt),
            yes(low)
        ));
        if cr0_lap && !exempt && low {
            t.line("→ protection exception, type low-address (checked before translation)");
            return Some(4);
        }
        t.line("→ no low-address protection");
    } else {
        t.line("applies to stores only: not checked for a fetch");
    }

    // ----- §5.6 / §5.7 -----
    t.head("");
    let translation = if psw.dat() {
        t.head("DAT (§5.6)");
        match narrate_walk(t, vm, vcpu, report, asce, ga, mode) {
            Ok(a) => a,
            Err(code) => return Some(code),
        }
    } else {
        t.head("Prefixing (§5.7)");
        let abs = vcpu.real_to_absolute(RealAddress(ga));
        t.line(prefix_text(vcpu, ga, abs.0));
        let inside = vm.storage().in_memory(abs);
        t.line(format!("absolute {:#x} in memory: {}", abs.0, ok(inside)));
        if !inside {
            t.line("→ addressing exception");
            return Some(5);
        }
        abs
    };

    // ----- §8.3 -----
    t.head("");
    t.head("Key-controlled protection (§8.3)");
    if key.is_zero() {
        t.line("access key 0: every access is permitted; no key is looked at");
        return None;
    }
    t.line(format!(
        "guest storage keys in use: {} (§10.1)",
        yes(vm.keys_in_use())
    ));
    let Ok(sk) = vm.storage_key(translation) else {
        t.line(format!(
            "the key of frame {:#x} cannot be read: addressing exception",
            translation.0
        ));
        return Some(5);
    };
    t.line(format!(
        "access key {}, storage key of frame {:#x}: {}",
        key.value(),
        translation.0 & !0xFFF,
        key_text(sk.0)
    ));
    if key.value() == sk.acc() {
        t.line("access key = ACC → permitted");
        return None;
    }
    t.line("access key ≠ ACC");
    if !mode.is_store() {
        if !sk.fetch_protected() {
            t.line("fetch from a frame with F = 0 → permitted");
            return None;
        }
        let fpo = protection::fetch_protection_override_applicable(vcpu, mode, asce.private());
        t.line(format!(
            "F = 1; fetch-protection override: CR0 bit 38 = {}, private space with DAT on: {} → {}",
            bit(vcpu.cr0(cr0::FETCH_PROTECTION_OVERRIDE)),
            yes(psw.dat() && asce.private()),
            if fpo { "applicable" } else { "not applicable" }
        ));
        if fpo {
            let applies = protection::fetch_protection_override_applies(ga, 1);
            t.line(format!(
                "the fragment (1 byte at {ga:#x}) lies in 0..2047: {}",
                yes(applies)
            ));
            if applies {
                t.line("→ permitted by fetch-protection override");
                return None;
            }
        }
    } else {
        t.line("store: fetch protection and its override do not matter");
    }
    let spo = protection::storage_protection_override_applicable(vcpu);
    t.line(format!(
        "storage-protection override: CR0 bit 39 = {}, ACC = 9: {}",
        bit(spo),
        yes(sk.acc() == 9)
    ));
    if spo && sk.acc() == 9 {
        t.line("→ permitted by storage-protection override");
        return None;
    }
    t.line("→ protection exception, type key-controlled");
    t.line("(a memop checks the key while moving the data, §5.8, with the same verdict)");
    Some(4)
}

fn prefix_text(vcpu: &Vcpu, real: u64, abs: u64) -> String {
    let p = vcpu.effective_prefix();
    let how = if real < 0x2000 {
        format!("below 0x2000: real + prefix {p:#x}")
    } else if real >= p && real < p + 0x2000 {
        format!(
            "in the prefix area [{p:#x}, {:#x}): real - prefix",
            p + 0x2000
        )
    } else {
        "neither below 0x2000 nor in the prefix area: unchanged".to_owned()
    };
    format!(
        "real {real:#x} → absolute {abs:#x} ({how}; prefix register {:#x}, effective prefix {p:#x})",
        vcpu.prefix
    )
}

/// §5.3, from the engine's ART trace. Returns the ASCE or the code it ended with.
fn narrate_art(
    t: &mut Text,
    vcpu: &Vcpu,
    spaces: &[BuiltSpace],
    report: &TranslationReport,
    ar: u8,
    mode: AccessMode,
) -> Result<Asce, i64> {
    t.line(format!(
        "access-register mode: access-register translation of AR {ar} (§5.3)"
    ));
    if ar >= 16 {
        t.line("AR number ≥ 16 → -EINVAL");
        return Err(-22);
    }
    let alet = vcpu.ar[ar as usize];
    t.line(format!("ALET = AR{ar} = {alet:#010x}"));
    if ar == 0 || alet == 0 {
        t.line(format!(
            "{} → primary space: ASCE = CR1 = {}{}",
            if ar == 0 { "AR number 0" } else { "ALET 0" },
            hex64(vcpu.cr[1]),
            space_of(spaces, vcpu.cr[1])
        ));
        return Ok(Asce(vcpu.cr[1]));
    }
    if alet == 1 {
        t.line(format!(
            "ALET 1 → secondary space: ASCE = CR7 = {}{}",
            hex64(vcpu.cr[7]),
            space_of(spaces, vcpu.cr[7])
        ));
        return Ok(Asce(vcpu.cr[7]));
    }
    let reserved = alet & alet_bits::RESERVED;
    t.line(format!(
        "ALET bits 0-6 = {:#x}: {}",
        reserved >> 25,
        ok(reserved == 0)
    ));
    if reserved != 0 {
        t.line("→ ALET-specification exception (0x28)");
        return Err(0x28);
    }
    let primary_list = alet & alet_bits::P != 0;
    let (cr, what) = if primary_list {
        (5, "PASTE")
    } else {
        (2, "DUCT")
    };
    let origin = vcpu.cr[cr] & 0x7FFF_FFC0;
    let alen = u64::from(alet & 0xFFFF);
    let alesn = u64::from((alet >> 16) & 0xFF);
    t.line(format!(
        "ALET P = {}: the ALD comes from the {what} at CR{cr} & 0x7fffffc0 = {origin:#x}; ALESN {alesn:#x}, ALEN {alen:#x}",
        bit(primary_list)
    ));
    let ald_real = origin + 16;
    let ald_abs = vcpu.real_to_absolute(RealAddress(ald_real));
    let Some((_, ald)) = report.art.ald else {
        t.line(format!(
            "ALD at real {ald_real:#x} (absolute {:#x}) is not in memory → addressing exception (§5.3.1)",
            ald_abs.0
        ));
        return Err(5);
    };
    let alo = u64::from((ald >> 7) & 0xFF_FFFF);
    let all = u64::from(ald & 0x7F);
    t.line(format!(
        "ALD at real {ald_real:#x} (absolute {:#x}) = {ald:#010x}: ALO {alo:#x} (access list at {:#x}), ALL {all}",
        ald_abs.0,
        alo * 128
    ));
    t.line(format!(
        "ALEN / 8 = {} ≤ ALL {all}: {}",
        alen / 8,
        ok(alen / 8 <= all)
    ));
    if alen / 8 > all {
        t.line("→ ALEN-translation exception (0x29)");
        return Err(0x29);
    }
    let ale_real = alo * 128 + alen * 16;
    t.line(format!(
        "ALE address ALO*128 + ALEN*16 = {ale_real:#x} ≤ 0x7fffffff: {}",
        ok(ale_real <= 0x7FFF_FFFF)
    ));
    if ale_real > 0x7FFF_FFFF {
        t.line("→ addressing exception");
        return Err(5);
    }
    let ale_abs = vcpu.real_to_absolute(RealAddress(ale_real));
    let Some((_, [w0, w1])) = report.art.ale else {
        t.line(format!(
            "ALE at real {ale_real:#x} (absolute {:#x}) is not in memory → addressing exception",
            ale_abs.0
        ));
        return Err(5);
    };
    let ale_i = w0 & (1 << 63) != 0;
    let fo = w0 & (1 << 57) != 0;
    let private = w0 & (1 << 56) != 0;
    let ale_alesn = (w0 >> 48) & 0xFF;
    let aleax = (w0 >> 32) & 0xFFFF;
    let asteo = (w1 >> 38) & 0x1FF_FFFF;
    let astesn = w1 & 0xFFFF_FFFF;
    t.line(format!(
        "ALE at real {ale_real:#x} (absolute {:#x}) = {} {}",
        ale_abs.0,
        hex64(w0),
        hex64(w1)
    ));
    t.sub(format!(
        "I {}, FO {}, P {}, ALESN {ale_alesn:#x}, ALEAX {aleax:#x}, ASTEO {asteo:#x} (ASTE at {:#x}), ASTESN {astesn:#x}",
        bit(ale_i),
        bit(fo),
        bit(private),
        asteo * 64
    ));
    t.sub(format!("I = 0: {}", ok(!ale_i)));
    if ale_i {
        t.line("→ ALEN-translation exception (0x29)");
        return Err(0x29);
    }
    t.sub(format!(
        "ALE ALESN {ale_alesn:#x} = ALET ALESN {alesn:#x}: {}",
        ok(ale_alesn == alesn)
    ));
    if ale_alesn != alesn {
        t.line("→ ALE-sequence exception (0x2a)");
        return Err(0x2A);
    }
    let aste_real = asteo * 64;
    let aste_abs = vcpu.real_to_absolute(RealAddress(aste_real));
    let Some((_, [d0, d1, d2])) = report.art.aste else {
        t.line(format!(
            "ASTE at real {aste_real:#x} (absolute {:#x}) is not in memory → addressing exception",
            aste_abs.0
        ));
        return Err(5);
    };
    let aste_i = d0 & (1 << 63) != 0;
    let ato = (d0 >> 34) & 0x1FFF_FFFF;
    let atl = (d0 >> 4) & 0xFFF;
    let aste_sn = d2 & 0xFFFF_FFFF;
    t.line(format!(
        "ASTE at real {aste_real:#x} (absolute {:#x}) = {} {} {}",
        aste_abs.0,
        hex64(d0),
        hex64(d1),
        hex64(d2)
    ));
    t.sub(format!(
        "I {}, ATO {ato:#x}, ATL {atl:#x}, ASCE {}, ASTESN {aste_sn:#x}",
        bit(aste_i),
        hex64(d1)
    ));
    t.sub(format!("I = 0: {}", ok(!aste_i)));
    if aste_i {
        t.line("→ ASTE-validity exception (0x2b)");
        return Err(0x2B);
    }
    t.sub(format!(
        "ASTE ASTESN {aste_sn:#x} = ALE ASTESN {astesn:#x}: {}",
        ok(aste_sn == astesn)
    ));
    if aste_sn != astesn {
        t.line("→ ASTE-sequence exception (0x2c)");
        return Err(0x2C);
    }
    if private {
        let eax = (vcpu.cr[8] >> 16) & 0xFFFF;
        t.sub(format!(
            "ALE P = 1: EAX (CR8 bits 32-47) = {eax:#x}, ALEAX {aleax:#x}"
        ));
        if aleax != eax {
            t.sub(format!(
                "EAX / 16 = {} ≤ ATL {atl}: {}",
                eax / 16,
                ok(eax / 16 <= atl)
            ));
            if eax / 16 > atl {
                t.line("→ extended-authority exception (0x2d)");
                return Err(0x2D);
            }
            let auth_real = ato * 4 + eax / 4;
            let Some((auth_abs, byte)) = report.art.authority else {
                t.line(format!("authority-table byte at real {auth_real:#x} is not in memory → addressing exception"));
                return Err(5);
            };
            let mask = 0x40u8 >> (2 * (eax & 3));
            t.sub(format!(
                "authority-table byte at real {auth_real:#x} (absolute {:#x}) = {byte:#04x}; secondary-authority bit (mask {mask:#04x}) = {}",
                auth_abs.0,
                bit(byte & mask != 0)
            ));
            if byte & mask == 0 {
                t.line("→ extended-authority exception (0x2d)");
                return Err(0x2D);
            }
        } else {
            t.sub("ALEAX = EAX: authorized");
        }
    }
    if fo {
        t.sub(format!(
            "ALE FO = 1 (fetch only), access is a {}",
            if mode.is_store() { "store" } else { "fetch" }
        ));
        if mode.is_store() {
            t.line("→ protection exception, type access-list-controlled (§8.4)");
            return Err(4);
        }
    }
    t.line(format!(
        "ASCE = ASTE doubleword 1 = {}{}",
        hex64(d1),
        space_of(spaces, d1)
    ));
    Ok(Asce(d1))
}

fn levels_codes(level: TableLevel) -> (u16, u16) {
    match level {
        TableLevel::RegionFirst => (0x39, 0x3A),
        TableLevel::RegionSecond => (0x3A, 0x3B),
        TableLevel::RegionThird => (0x3B, 0x10),
        TableLevel::Segment => (0x10, 0x11),
        TableLevel::Page => (0x11, 0x11),
    }
}

fn fail(t: &mut Text, code: u16) -> i64 {
    t.line(format!("→ {} exception ({code:#04x})", code_name(code)));
    i64::from(code)
}

/// §5.6 from the engine's trace. Returns the absolute address or the code.
fn narrate_walk(
    t: &mut Text,
    vm: &Vm,
    vcpu: &Vcpu,
    report: &TranslationReport,
    asce: Asce,
    v: u64,
    mode: AccessMode,
) -> Result<AbsoluteAddress, i64> {
    let f = vm.facilities();
    let cr0_edat = vcpu.cr0(cr0::EDAT);
    let edat1 = cr0_edat && f.has(Facilities::EDAT1);
    let edat2 = edat1 && f.has(Facilities::EDAT2);
    t.line(format!(
        "EDAT-1: CR0 bit 40 = {}, facility 8 {} → {}; EDAT-2: facility 78 {} → {}",
        bit(cr0_edat),
        if f.has(Facilities::EDAT1) {
            "installed"
        } else {
            "not installed"
        },
        if edat1 { "applies" } else { "does not apply" },
        if f.has(Facilities::EDAT2) {
            "installed"
        } else {
            "not installed"
        },
        if edat2 { "applies" } else { "does not apply" },
    ));
    if asce.real_space() {
        t.line("ASCE R = 1: a real space; the address is a real address (step A), DT/TL/origin ignored");
        let abs = vcpu.real_to_absolute(RealAddress(v));
        t.head("");
        t.head("Prefixing (§5.7)");
        t.line(prefix_text(vcpu, v, abs.0));
        return finish(t, vm, abs, false, mode);
    }
    t.line(format!(
        "index fields of {v:#x}: RFX {:#x}, RSX {:#x}, RTX {:#x}, SX {:#x}, PX {:#x}, BX {:#x}",
        TableLevel::RegionFirst.index(v),
        TableLevel::RegionSecond.index(v),
        TableLevel::RegionThird.index(v),
        TableLevel::Segment.index(v),
        TableLevel::Page.index(v),
        v & 0xFFF
    ));
    // Step B.
    let tl = asce.tl();
    let (rfx, rsx, rtx) = (
        TableLevel::RegionFirst.index(v),
        TableLevel::RegionSecond.index(v),
        TableLevel::RegionThird.index(v),
    );
    let top = asce.dt().level();
    let (higher_zero, names) = match asce.dt() {
        DesignationType::RegionFirst => (true, ""),
        DesignationType::RegionSecond => (rfx == 0, "RFX"),
        DesignationType::RegionThird => (rfx == 0 && rsx == 0, "RFX and RSX"),
        DesignationType::Segment => (rfx == 0 && rsx == 0 && rtx == 0, "RFX, RSX and RTX"),
    };
    t.line(format!(
        "ASCE checks (step B, before any table is read), designation {}:",
        top.name()
    ));
    if !names.is_empty() {
        t.sub(format!("{names} = 0: {}", ok(higher_zero)));
        if !higher_zero {
            return Err(fail(t, 0x38));
        }
    }
    let top2 = top.index_top2(v);
    let field = match top {
        TableLevel::RegionFirst => "RFX01",
        TableLevel::RegionSecond => "RSX01",
        TableLevel::RegionThird => "RTX01",
        _ => "SX01",
    };
    t.sub(format!("{field} {top2} ≤ TL {tl}: {}", ok(top2 <= tl)));
    if top2 > tl {
        return Err(fail(t, levels_codes(top).0));
    }

    let mut dat_prot = false;
    let mut level = top;
    let mut entry = asce.origin().wrapping_add(level.index(v) * 8);
    let mut via = format!(
        "ASCE origin {:#x} + {:#x} * 8",
        asce.origin(),
        level.index(v)
    );
    let mut entries = report.trace.entries().iter();
    loop {
        t.line(format!(
            "{} table entry at absolute {entry:#x} ({via}; no prefixing, §11 item 1)",
            level.name()
        ));
        let Some(te) = entries.next() else {
            t.sub("entry address in memory: FAILS");
            return Err(fail(t, 5));
        };
        let e = te.value;
        t.sub("entry address in memory: ok");
        if te.address.0 != entry {
            t.sub(format!("note: the engine read {:#x}", te.address.0));
        }
        let (invalid_code, length_code) = levels_codes(level);
        match level {
            TableLevel::RegionFirst | TableLevel::RegionSecond | TableLevel::RegionThird => {
                let r = RegionTableEntry(e);
                let rtte = level == TableLevel::RegionThird;
                if rtte && r.fc() && edat2 {
                    t.sub(format!(
                        "raw {}: FC 1 (2G frame), RFAA {:#x}, P {}, IEP {}, I {}, CR {}, TT {}",
                        hex64(e),
                        e & RegionTableEntry::RFAA,
                        bit(r.protected()),
                        bit(e & RegionTableEntry::IEP != 0),
                        bit(r.invalid()),
                        bit(e & RegionTableEntry::CR != 0),
                        r.tt()
                    ));
                } else {
                    t.sub(format!(
                        "raw {}: {} {:#x}, {}P {}, I {}, {}TT {}, TF {}, TL {}",
                        hex64(e),
                        if rtte { "STO" } else { "RTO" },
                        r.origin(),
                        if rtte {
                            format!(
                                "FC {}{}, ",
                                bit(r.fc()),
                                if r.fc() {
                                    " (ignored: EDAT-2 does not apply, §11 item 4)"
                                } else {
                                    ""
                                }
                            )
                        } else {
                            String::new()
                        },
                        bit(r.protected()),
                        bit(r.invalid()),
                        if rtte {
                            format!("CR {}, ", bit(e & RegionTableEntry::CR != 0))
                        } else {
                            String::new()
                        },
                        r.tt(),
                        r.tf(),
                        r.tl()
                    ));
                }
                t.sub(format!("I = 0: {}", ok(!r.invalid())));
                if r.invalid() {
                    return Err(fail(t, invalid_code));
                }
                let want_tt = level.table_type().unwrap_or(0);
                t.sub(format!(
                    "TT {}, must be {want_tt}: {}",
                    r.tt(),
                    ok(r.tt() == want_tt)
                ));
                if r.tt() != want_tt {
                    return Err(fail(t, 0x12));
                }
                if rtte {
                    let bad = e & RegionTableEntry::CR != 0 && asce.private() && edat2;
                    t.sub(format!(
                        "not (CR and private ASCE with EDAT-2): {}",
                        ok(!bad)
                    ));
                    if bad {
                        return Err(fail(t, 0x12));
                    }
                    if r.fc() && edat2 {
                        dat_prot |= r.protected();
                        let real = (e & RegionTableEntry::RFAA) | (v & 0x7FFF_FFFF);
                        t.sub(format!(
                            "FC = 1 with EDAT-2: 2G frame; P {} → DAT protection so far {}",
                            bit(r.protected()),
                            bit(dat_prot)
                        ));
                        t.sub(format!("absolute address = RFAA | (address & 0x7fffffff) = {real:#x} (no prefixing for large frames)"));
                        return finish(t, vm, AbsoluteAddress(real), dat_prot, mode);
                    }
                }
                let lower = level.lower().unwrap_or(TableLevel::Page);
                let x01 = lower.index_top2(v);
                let lname = match lower {
                    TableLevel::RegionSecond => "RSX01",
                    TableLevel::RegionThird => "RTX01",
                    _ => "SX01",
                };
                let within = x01 >= r.tf() && x01 <= r.tl();
                t.sub(format!(
                    "TF {} ≤ {lname} {x01} ≤ TL {}: {}",
                    r.tf(),
                    r.tl(),
                    ok(within)
                ));
                if !within {
                    return Err(fail(t, length_code));
                }
                let counted = edat1 && r.protected();
                dat_prot |= counted;
                if r.protected() {
                    t.sub(format!(
                        "P = 1 {}",
                        if edat1 {
                            "counts (EDAT-1 applies)"
                        } else {
                            "ignored: region P bits count only with EDAT-1 (§11 item 5)"
                        }
                    ));
                }
                via = format!("origin {:#x} + {:#x} * 8", r.origin(), lower.index(v));
                entry = r.origin().wrapping_add(lower.index(v) * 8);
                level = lower;
            }
            TableLevel::Segment => {
                let s = SegmentTableEntry(e);
                let large = s.fc() && edat1;
                if large {
                    t.sub(format!(
                        "raw {}: FC 1 (1M frame), SFAA {:#x}, P {}, IEP {}, I {}, CS {}, TT {}",
                        hex64(e),
                        e & SegmentTableEntry::SFAA,
                        bit(s.protected()),
                        bit(e & SegmentTableEntry::IEP != 0),
                        bit(s.invalid()),
                        bit(e & SegmentTableEntry::CS != 0),
                        s.tt()
                    ));
                } else {
                    t.sub(format!(
                        "raw {}: PTO {:#x}, FC {}{}, P {}, I {}, CS {}, TT {}",
                        hex64(e),
                        e & SegmentTableEntry::PTO,
                        bit(s.fc()),
                        if s.fc() {
                            " (ignored: EDAT-1 does not apply, §11 item 4)"
                        } else {
                            ""
                        },
                        bit(s.protected()),
                        bit(s.invalid()),
                        bit(e & SegmentTableEntry::CS != 0),
                        s.tt()
                    ));
                }
                t.sub(format!("I = 0: {}", ok(!s.invalid())));
                if s.invalid() {
                    return Err(fail(t, invalid_code));
                }
                t.sub(format!("TT {}, must be 0: {}", s.tt(), ok(s.tt() == 0)));
                if s.tt() != 0 {
                    return Err(fail(t, 0x12));
                }
                let bad = e & SegmentTableEntry::CS != 0 && asce.private();
                t.sub(format!("not (CS and private ASCE): {}", ok(!bad)));
                if bad {
                    return Err(fail(t, 0x12));
                }
                dat_prot |= s.protected();
                if s.protected() {
                    t.sub("P = 1 counts (segment P bits always count)");
                }
                if large {
                    let real = (e & SegmentTableEntry::SFAA) | (v & 0xF_FFFF);
                    t.sub(format!(
                        "FC = 1 with EDAT-1: 1M frame; DAT protection so far {}",
                        bit(dat_prot)
                    ));
                    t.sub(format!("absolute address = SFAA | (address & 0xfffff) = {real:#x} (no prefixing for large frames)"));
                    return finish(t, vm, AbsoluteAddress(real), dat_prot, mode);
                }
                let pto = e & SegmentTableEntry::PTO;
                via = format!("PTO {pto:#x} + PX {:#x} * 8", TableLevel::Page.index(v));
                entry = pto.wrapping_add(TableLevel::Page.index(v) * 8);
                level = TableLevel::Page;
            }
            TableLevel::Page => {
                let p = PageTableEntry(e);
                t.sub(format!(
                    "raw {}: PFRA {:#x}, Z {}, I {}, P {}, IEP {}",
                    hex64(e),
                    e & PageTableEntry::PFRA,
                    bit(e & PageTableEntry::Z != 0),
                    bit(p.invalid()),
                    bit(e & PageTableEntry::P != 0),
                    bit(e & PageTableEntry::IEP != 0)
                ));
                t.sub(format!("I = 0: {}", ok(!p.invalid())));
                if p.invalid() {
                    return Err(fail(t, invalid_code));
                }
                t.sub(format!(
                    "Z (bit 52) = 0: {}",
                    ok(e & PageTableEntry::Z == 0)
                ));
                if e & PageTableEntry::Z != 0 {
                    return Err(fail(t, 0x12));
                }
                dat_prot |= e & PageTableEntry::P != 0;
                let real = (e & PageTableEntry::PFRA) | (v & 0xFFF);
                t.sub(format!(
                    "4K page: real address = PFRA | BX = {real:#x}; DAT protection so far {}",
                    bit(dat_prot)
                ));
                let abs = vcpu.real_to_absolute(RealAddress(real));
                t.head("");
                t.head("Prefixing (§5.7)");
                t.line(prefix_text(vcpu, real, abs.0));
                return finish(t, vm, abs, dat_prot, mode);
            }
        }
    }
}

/// The ABSOLUTE step of §5.6: DAT protection (store) before addressing of the frame.
fn finish(
    t: &mut Text,
    vm: &Vm,
    abs: AbsoluteAddress,
    dat_prot: bool,
    mode: AccessMode,
) -> Result<AbsoluteAddress, i64> {
    t.head("");
    t.head("Final checks (§5.6 ABSOLUTE)");
    if mode.is_store() {
        t.line(format!(
            "store: DAT protection accumulated = {}: {}",
            bit(dat_prot),
            ok(!dat_prot)
        ));
        if dat_prot {
            t.line("→ protection exception, type DAT (checked before the frame's addressing)");
            return Err(4);
        }
    } else {
        t.line("fetch: DAT protection does not apply");
    }
    let inside = vm.storage().in_memory(abs);
    t.line(format!("absolute {:#x} in memory: {}", abs.0, ok(inside)));
    if !inside {
        return Err(fail(t, 5));
    }
    Ok(abs)
}
