//! Comparing an emulator's outcome with the model's, and the table of known
//! departures that explain the differences (also in `docs/conformance.md`, section
//! "Known departures of the emulators"; a test keeps the two in step).
//!
//! A difference is split into fields ([`Field`]). Each differing field is explained by
//! the first departure of [`DEPARTURES`] whose backend, fields and test match, or it is
//! unknown. Many tests ask the model "what if": they compare the emulator with the
//! access's [`Variants`](super::plan::Variants), the model run without one rule.
#![forbid(unsafe_code)]

use super::emulator::{Backend, RawResult};
use super::plan::Access;
use super::probe::{Outcome, Probe};
use crate::exception::Teid;

/// A part of an outcome that can differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// The interruption code (0: completed).
    Code,
    /// Whether a TEID was stored.
    TeidStored,
    /// TEID bits 0-51.
    TeidAddress,
    /// TEID bits 52-53, fetch/store indication.
    TeidFsi,
    /// TEID bits 56, 60, 61.
    TeidProtection,
    /// TEID bits 62-63, address-space indication.
    TeidSpace,
    /// Exception access id (stored or not, and value).
    AccessId,
    /// Data of a completed fetch.
    Data,
}

impl Field {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Field::Code => "code",
            Field::TeidStored => "teid-stored",
            Field::TeidAddress => "teid-address",
            Field::TeidFsi => "teid-fsi",
            Field::TeidProtection => "teid-56/60/61",
            Field::TeidSpace => "teid-as",
            Field::AccessId => "access-id",
            Field::Data => "data",
        }
    }
}

/// The differing fields of two outcomes. A different code makes the other fields
/// incomparable, so it is reported alone.
pub fn differences(model: &Outcome, emu: &Outcome) -> Vec<Field> {
    if model.code != emu.code {
        return vec![Field::Code];
    }
    let mut d = Vec::new();
    if model.code == 0 {
        if model.data != emu.data {
            d.push(Field::Data);
        }
        return d;
    }
    match (model.teid, emu.teid) {
        (Some(m), Some(e)) => {
            let parts = [
                (Field::TeidAddress, Teid::ADDRESS_MASK),
                (Field::TeidFsi, Teid::FSI_MASK),
                (Field::TeidProtection, Teid::B56 | Teid::B60 | Teid::B61),
                (Field::TeidSpace, Teid::AS_MASK),
            ];
            for (f, mask) in parts {
                if m & mask != e & mask {
                    d.push(f);
                }
            }
        }
        (None, None) => {}
        _ => d.push(Field::TeidStored),
    }
    if model.eaid != emu.eaid {
        d.push(Field::AccessId);
    }
    d
}

/// What a departure's test sees.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// The emulator.
    pub backend: Backend,
    /// The access, with its what-if outcomes.
    pub access: &'a Access,
    /// The model's outcome.
    pub model: &'a Outcome,
    /// The emulator's outcome.
    pub emu: &'a Outcome,
    /// The guest's raw line.
    pub raw: &'a RawResult,
    /// The field being explained.
    pub field: Field,
    /// The access touches a frame whose contents an earlier departure or skipped
    /// access made differ between model and emulator.
    pub tainted: bool,
    /// The emulator has more main storage than the model (rounded up, or room for the
    /// blob).
    pub larger_memory: bool,
}

impl Ctx<'_> {
    /// The emulator did what the model does without one rule.
    fn as_variant(&self, p: &Probe) -> bool {
        if p.errno || p.outcome.code != self.emu.code {
            return false;
        }
        if self.model.code == self.emu.code && self.field == Field::Data {
            return p.outcome.data == self.emu.data;
        }
        if self.field != Field::Code {
            return self.exactly_variant(p);
        }
        // Same code; where both give a TEID address, it agrees too.
        match (p.outcome.teid, self.emu.teid) {
            (Some(a), Some(b)) => a & Teid::ADDRESS_MASK == b & Teid::ADDRESS_MASK,
            _ => true,
        }
    }

    /// The emulator's outcome is exactly the variant's.
    fn exactly_variant(&self, p: &Probe) -> bool {
        !p.errno
            && p.outcome.code == self.emu.code
            && p.outcome.teid == self.emu.teid
            && (self.emu.code != 0 || p.outcome.data == self.emu.data)
    }

    /// The ASCE the operand is translated with (None in AR mode or with DAT off).
    fn operand_asce(&self) -> Option<u64> {
        let psw = self.access.psw;
        if psw & crate::vcpu::Psw::DAT == 0 {
            return None;
        }
        match (psw & crate::vcpu::Psw::AS_MASK) >> crate::vcpu::Psw::AS_SHIFT {
            0 => Some(self.access.regs.cr1),
            1 => self.access.ar_asce,
            2 => Some(self.access.regs.cr7),
            _ => Some(self.access.regs.cr13),
        }
    }

    fn model_lap(&self) -> bool {
        self.model.code == 4 && self.model.teid.is_some_and(|t| t & Teid::B56 != 0)
    }

    fn prot_bits(t: u64) -> u64 {
        t & (Teid::B56 | Teid::B60 | Teid::B61)
    }
}

/// Who departs from whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// The emulator does not implement something (or implements it differently).
    Emulator,
    /// The kernel departs from the Principles of Operation (kernel-semantics.md §11);
    /// the emulator follows the PoP.
    Kernel,
    /// An artefact of running the scenario in a guest.
    Harness,
}

impl Class {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Class::Emulator => "emulator",
            Class::Kernel => "kernel",
            Class::Harness => "harness",
        }
    }
}

/// A known departure.
#[derive(Clone, Copy)]
pub struct Departure {
    /// Stable identifier (used in reports and docs/conformance.md).
    pub id: &'static str,
    /// The emulator it concerns; `None`: any.
    pub backend: Option<Backend>,
    /// Who departs.
    pub class: Class,
    /// The fields it explains.
    pub fields: &'static [Field],
    /// What happens, in one sentence.
    pub summary: &'static str,
    /// Does it explain this difference?
    pub test: fn(&Ctx) -> bool,
}

impl std::fmt::Debug for Departure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id)
    }
}

const TEID_PARTS: &[Field] = &[
    Field::TeidAddress,
    Field::TeidFsi,
    Field::TeidProtection,
    Field::TeidSpace,
];

/// The known departures, most specific first (the harness's taint last: it explains
/// what nothing else does).
pub const DEPARTURES: &[Departure] = &[
    Departure {
        id: "harness-memory-size",
        backend: None,
        class: Class::Harness,
        fields: &[Field::Code],
        summary: "The emulator's main storage is larger than the model's (whole MiB, at least 2 MiB on Hercules, room for the blob): the model's addressing exception finds memory there.",
        test: |c| c.larger_memory && c.model.code == 5 && c.emu.code != 5,
    },
    Departure {
        id: "qemu-no-key-protection",
        backend: Some(Backend::Qemu),
        class: Class::Emulator,
        fields: &[Field::Code, Field::Data, Field::TeidProtection],
        summary: "QEMU 7.2 TCG implements neither key-controlled protection nor fetch protection (mmu_helper.c: \"TODO: key-controlled protection\"): key-protected accesses complete.",
        test: |c| c.as_variant(&c.access.variants.no_keys),
    },
    Departure {
        id: "qemu-no-edat",
        backend: Some(Backend::Qemu),
        class: Class::Emulator,
        fields: &[
            Field::Code,
            Field::Data,
            Field::TeidAddress,
            Field::TeidProtection,
        ],
        summary: "QEMU 7.2 TCG has neither EDAT-1 nor EDAT-2 (facilities 8, 78): it ignores the FC bit of segment and region-third entries and the region-level P bits, as the model does with CR0.40 off.",
        test: |c| {
            c.as_variant(&c.access.variants.no_edat)
                || c.as_variant(&c.access.variants.no_edat_no_keys)
        },
    },
    Departure {
        id: "qemu-no-access-id",
        backend: Some(Backend::Qemu),
        class: Class::Emulator,
        fields: &[Field::AccessId],
        summary: "QEMU 7.2 TCG never stores the exception access id (lowcore 160); the kernel stores the memop's ar for DAT and protection exceptions (§9.3).",
        test: |c| c.model.eaid.is_some() && c.emu.eaid.is_none(),
    },
    Departure {
        id: "kernel-cross-page-order",
        backend: None,
        class: Class::Kernel,
        fields: &[
            Field::Code,
            Field::TeidAddress,
            Field::TeidFsi,
            Field::TeidProtection,
            Field::TeidSpace,
        ],
        summary: "For an operand that crosses a page boundary the kernel first translates both pages (LAP, DAT, DAT protection, addressing), then checks the keys page by page (§5.4, §5.8, §11 item 8); a CPU may recognise the exceptions of the two pages in another order (Hercules: a key-protection exception of the first page before a translation exception of the second, LAP of the second page before a translation exception of the first). The emulator reports what the model gives for one of the two pages alone.",
        test: |c| {
            let Some(frags) = &c.access.variants.fragments else {
                return false;
            };
            // The TEID fields other than the address differ because the exception is
            // another page's; the address shows which.
            let page = |t: Option<u64>| t.map(|t| t & Teid::ADDRESS_MASK);
            if !matches!(c.field, Field::Code | Field::TeidAddress)
                && (page(c.emu.teid) == page(c.model.teid) || page(c.emu.teid) == Some(0))
            {
                return false;
            }
            frags.iter().any(|f| {
                !f.errno
                    && f.outcome.code == c.emu.code
                    && c.emu.code != 0
                    && match (f.outcome.teid, c.emu.teid) {
                        (Some(a), Some(b)) if b & Teid::ADDRESS_MASK != 0 => {
                            a & Teid::ADDRESS_MASK == b & Teid::ADDRESS_MASK
                        }
                        _ => true,
                    }
            })
        },
    },
    Departure {
        id: "hercules-lap-after-translation",
        backend: Some(Backend::Hercules),
        class: Class::Kernel,
        fields: &[Field::Code, Field::TeidProtection],
        summary: "The kernel tests low-address protection on the effective address before translation (§5.4, §11 item 7); Hercules translates first, so a translation exception wins over LAP.",
        test: |c| {
            let late = &c.access.variants.lap_late;
            c.model_lap()
                && if c.field == Field::Code {
                    c.as_variant(late)
                } else {
                    // Same code (4): DAT protection found by the translation.
                    late.outcome.code == c.emu.code
                        && late.outcome.teid.map(Ctx::prot_bits) == c.emu.teid.map(Ctx::prot_bits)
                }
        },
    },
    Departure {
        id: "kernel-real-space-not-private",
        backend: Some(Backend::Hercules),
        class: Class::Kernel,
        fields: &[Field::Code],
        summary: "For LAP and fetch-protection override the kernel looks only at the ASCE's private-space bit, also for a real-space ASCE (§8.1, §11 item 14); Hercules treats a real-space designation as private, so LAP does not apply and FPO is off.",
        test: |c| {
            let real = c
                .operand_asce()
                .is_some_and(|a| a & 0x20 != 0 && a & 0x100 == 0);
            real && ((c.model_lap() && c.emu.code == 0) || (c.model.code == 0 && c.emu.code == 4))
        },
    },
    Departure {
        id: "hercules-no-edat2",
        backend: Some(Backend::Hercules),
        class: Class::Emulator,
        fields: &[Field::Code, Field::Data, Field::TeidAddress],
        summary: "Hercules 3.13 has no EDAT-2 (facility 78): region-third entries with FC=1 are region-third entries pointing to segment tables.",
        test: |c| c.as_variant(&c.access.variants.no_edat2),
    },
    Departure {
        id: "hercules-lap-teid",
        backend: Some(Backend::Hercules),
        class: Class::Kernel,
        fields: TEID_PARTS,
        summary: "For low-address protection Hercules stores a TEID of 0 (no address, no FSI, no bit 56); the kernel fills address, FSI, bit 56 and AS (§9.3, §11 item 10).",
        test: |c| c.model_lap() && c.emu.teid == Some(0),
    },
    Departure {
        id: "hercules-no-fsi-on-protection",
        backend: Some(Backend::Hercules),
        class: Class::Emulator,
        fields: &[Field::TeidFsi],
        summary: "Hercules stores no fetch/store indication (TEID bits 52-53) for protection exceptions, although it reports facility 75; the kernel always sets it (§9.2, §11 item 10).",
        test: |c| c.model.code == 4 && c.emu.teid.is_some_and(|t| t & Teid::FSI_MASK == 0),
    },
    Departure {
        id: "kernel-esop2-bits",
        backend: Some(Backend::Hercules),
        class: Class::Kernel,
        fields: &[Field::TeidProtection],
        summary: "The kernel sets the ESOP-2 protection code (bits 56/60/61: key-controlled 010, LAP 100, access-list 011) without checking facility 131 (§9.3, §11 item 10); Hercules has no ESOP-2 and stores 000 for them (it sets bit 61 for DAT protection, as ESOP-1 does). Also where the kernel reports DAT protection of one page of a page-crossing operand and Hercules another kind of protection of the other page (kernel-cross-page-order).",
        test: |c| {
            let not_dat = |t: Option<u64>| t.map_or(0, Ctx::prot_bits) != Teid::B61;
            let page = |t: Option<u64>| t.map(|t| t & Teid::ADDRESS_MASK);
            // The page the emulator reports, alone, gives a protection other than DAT.
            let other_page = c.access.variants.fragments.as_ref().is_some_and(|f| {
                f.iter().any(|p| {
                    !p.errno
                        && p.outcome.code == 4
                        && not_dat(p.outcome.teid)
                        && page(p.outcome.teid) == page(c.emu.teid)
                })
            });
            c.model.code == 4
                && (not_dat(c.model.teid) || other_page)
                && c.emu.teid.is_some_and(|t| Ctx::prot_bits(t) == 0)
        },
    },
    Departure {
        id: "kernel-teid-as-with-dat-off",
        backend: None,
        class: Class::Kernel,
        fields: &[Field::TeidSpace],
        summary: "With DAT off the kernel stores the PSW's address-space bits in TEID bits 62-63 (§9.2, §11 item 10); with no translation there is no space to indicate: QEMU stores 00, Hercules leaves whatever an earlier translation put there.",
        test: |c| c.access.psw & crate::vcpu::Psw::DAT == 0,
    },
    Departure {
        id: "kernel-teid-as-in-ar-mode",
        backend: Some(Backend::Hercules),
        class: Class::Kernel,
        fields: &[Field::TeidSpace],
        summary: "In access-register mode the kernel stores the PSW's address-space bits, 01, in TEID bits 62-63 (§9.3, §11 item 10), whatever space access-register translation selected; Hercules stores 00 or 10 when AR 0, ALET 0 or ALET 1 selected the primary or secondary ASCE, and 00, 10 or 11 when the ASCE that an ALE gave is the primary, secondary or home ASCE.",
        test: |c| {
            let a = &c.access;
            let r = &a.regs;
            let used = if a.ar == 0 || a.alet == 0 {
                0
            } else if a.alet == 1 {
                2
            } else {
                match a.ar_asce {
                    Some(x) if x == r.cr1 => 0,
                    Some(x) if x == r.cr7 => 2,
                    Some(x) if x == r.cr13 => 3,
                    _ => 1,
                }
            };
            c.access.ar_mode()
                && c.model.teid.map(|t| t & Teid::AS_MASK) == Some(1)
                && c.emu.teid.map(|t| t & Teid::AS_MASK) == Some(used)
        },
    },
    Departure {
        id: "kernel-alc-protection-before-dat",
        backend: Some(Backend::Hercules),
        class: Class::Kernel,
        fields: &[Field::Code],
        summary: "The kernel refuses a store through a fetch-only ALE during access-register translation, before the DAT walk (§5.3 step 16, §8.4); Hercules translates first, so a translation or addressing exception of the walk wins over access-list-controlled protection.",
        test: |c| {
            let alc = c.model.code == 4
                && c.model.teid.map(Ctx::prot_bits) == Some(Teid::B60 | Teid::B61);
            c.access.ar_mode()
                && alc
                && matches!(c.emu.code, 0x05 | 0x10 | 0x11 | 0x12 | 0x38..=0x3B)
        },
    },
    Departure {
        id: "hercules-fetch-only-ale-private",
        backend: Some(Backend::Hercules),
        class: Class::Emulator,
        fields: &[Field::Code],
        summary: "Through a fetch-only ALE, Hercules 3.13 treats the space as private for the common-segment check: a translation-specification exception for a segment entry with the CS bit, also on a fetch and with a non-private ASCE. The kernel checks the private-space control of the ASCE alone (§9.1, §11 item 3).",
        test: |c| {
            c.access.ar_mode()
                && c.access.ar_fetch_only
                && c.emu.code == 0x12
                && c.model.code != 0x12
        },
    },
    Departure {
        id: "kernel-access-id-outside-ar-mode",
        backend: Some(Backend::Hercules),
        class: Class::Kernel,
        fields: &[Field::AccessId],
        summary: "The kernel stores the memop's ar as exception access id for every DAT and protection exception, also outside access-register mode (§9.3, §11 item 10); the architecture defines the field only in AR mode, and Hercules stores other values there.",
        test: |c| !c.access.ar_mode() && c.model.eaid.is_some() && c.emu.eaid.is_some(),
    },
    Departure {
        id: "qemu-teid-on-translation-specification",
        backend: Some(Backend::Qemu),
        class: Class::Emulator,
        fields: &[Field::TeidStored],
        summary: "QEMU stores a TEID (address, FSI, AS) for translation-specification exceptions (0x12); the kernel stores none (§9.3), nor does Hercules.",
        test: |c| c.model.code == 0x12 && c.emu.teid.is_some(),
    },
    Departure {
        id: "harness-tainted-data",
        backend: None,
        class: Class::Harness,
        fields: &[
            Field::Code,
            Field::Data,
            Field::TeidStored,
            Field::TeidAddress,
            Field::TeidFsi,
            Field::TeidProtection,
            Field::TeidSpace,
            Field::AccessId,
        ],
        summary: "The access reads a frame (its data, or a DAT table its translation reads) that an earlier known departure or skipped store left different in model and emulator.",
        test: |c| c.tainted,
    },
];

/// The verdict of one access on one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Emulator and model agree.
    Same,
    /// They differ, and every difference is a known departure.
    Known,
    /// Some difference is not explained.
    Unknown,
    /// Not run on this backend.
    Skipped(String),
    /// The backend ran it but printed no result.
    Missing,
    /// The guest's own instruction fetch failed (the stub was not reachable).
    Harness(String),
}

impl Verdict {
    /// Short name.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Same => "same",
            Verdict::Known => "known",
            Verdict::Unknown => "UNKNOWN",
            Verdict::Skipped(_) => "skipped",
            Verdict::Missing => "MISSING",
            Verdict::Harness(_) => "harness",
        }
    }
}

/// One differing field and what explains it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    /// The field.
    pub field: Field,
    /// The departure that explains it, if any.
    pub departure: Option<&'static str>,
}

/// An access compared on one backend.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// The verdict.
    pub verdict: Verdict,
    /// The emulator's outcome.
    pub emu: Option<Outcome>,
    /// The guest's raw line.
    pub raw: Option<RawResult>,
    /// The differences.
    pub diffs: Vec<Diff>,
}

/// Compare one access.
pub fn compare(
    backend: Backend,
    stub: u64,
    access: &Access,
    raw: Option<&RawResult>,
    tainted: bool,
    larger_memory: bool,
) -> Comparison {
    if let Some(why) = &access.skip[backend.index()] {
        return Comparison {
            verdict: Verdict::Skipped(why.clone()),
            emu: None,
            raw: None,
            diffs: Vec::new(),
        };
    }
    let Some(raw) = raw else {
        return Comparison {
            verdict: Verdict::Missing,
            emu: None,
            raw: None,
            diffs: Vec::new(),
        };
    };
    let emu = Outcome::from_raw(raw, access.store, access.size);
    let model = access.model;
    // The stub's own instruction fetch failed: the TEID names the stub page and the
    // model did not fail there.
    // Without a TEID (0x05, 0x12): the old PSW names the stub instruction itself,
    // where an operand exception of these suppressing codes would name the next one.
    let log2 = access.size.trailing_zeros() as u64;
    let slot = stub + 8 * ((u64::from(access.store) * 4 + log2) * 16 + u64::from(access.ar & 15));
    let fetch_failed = match emu.teid {
        Some(t) => {
            t & Teid::ADDRESS_MASK == stub
                && model.teid.is_none_or(|t| t & Teid::ADDRESS_MASK != stub)
                && raw.opsw & !0xfff == stub
        }
        None => matches!(emu.code, 0x05 | 0x12) && raw.opsw == slot && emu.code != model.code,
    };
    if emu.code != 0 && fetch_failed {
        return Comparison {
            verdict: Verdict::Harness(format!("the guest's stub fetch failed: {}", emu.describe())),
            emu: Some(emu),
            raw: Some(*raw),
            diffs: Vec::new(),
        };
    }
    let fields = differences(&model, &emu);
    let diffs: Vec<Diff> = fields
        .into_iter()
        .map(|field| {
            let ctx = Ctx {
                backend,
                access,
                model: &model,
                emu: &emu,
                raw,
                field,
                tainted,
                larger_memory,
            };
            let departure = DEPARTURES
                .iter()
                .find(|d| {
                    d.backend.is_none_or(|b| b == backend)
                        && d.fields.contains(&field)
                        && (d.test)(&ctx)
                })
                .map(|d| d.id);
            Diff { field, departure }
        })
        .collect();
    let verdict = if diffs.is_empty() {
        Verdict::Same
    } else if diffs.iter().all(|d| d.departure.is_some()) {
        Verdict::Known
    } else {
        Verdict::Unknown
    };
    Comparison {
        verdict,
        emu: Some(emu),
        raw: Some(*raw),
        diffs,
    }
}
