//! Access-register translation (`ar_translation`, §5.3) and the real-address reads it
//! makes (§5.3.1).
#![forbid(unsafe_code)]

use super::entries::Asce;
use crate::addr::{AbsoluteAddress, RealAddress};
use crate::exception::{AccessMode, ProgramInterruptionCode as Pgm};
use crate::storage::GuestStorage;
use crate::vcpu::Vcpu;

/// What access-register translation read, for the explain output and for the
/// reference bits of the frames holding those structures (§10.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ArtTrace {
    /// The ALET used.
    pub alet: u32,
    /// Absolute address and value of the access-list designation (4 bytes).
    pub ald: Option<(AbsoluteAddress, u32)>,
    /// Absolute address and the two doublewords of the access-list entry.
    pub ale: Option<(AbsoluteAddress, [u64; 2])>,
    /// Absolute address and the three doublewords of the ASN-second-table entry.
    pub aste: Option<(AbsoluteAddress, [u64; 3])>,
    /// Absolute address and value of the authority-table byte.
    pub authority: Option<(AbsoluteAddress, u8)>,
}

impl ArtTrace {
    /// The absolute addresses read, in order.
    pub fn addresses(&self) -> impl Iterator<Item = AbsoluteAddress> {
        [
            self.ald.map(|x| x.0),
            self.ale.map(|x| x.0),
            self.aste.map(|x| x.0),
            self.authority.map(|x| x.0),
        ]
        .into_iter()
        .flatten()
    }
}

/// ALET fields (bits 0-6 reserved, 7 P, 8-15 ALESN, 16-31 ALEN).
pub mod alet {
    /// Reserved bits 0-6.
    pub const RESERVED: u32 = 0xFE00_0000;
    /// Primary-list bit (bit 7): use the PASTE's list (CR5) rather than the DUCT's (CR2).
    pub const P: u32 = 0x0100_0000;
}

/// ALE word 0 flags (§5.3.1).
pub mod ale {
    use crate::addr::bit;
    /// ALE-invalid bit (bit 0).
    pub const INVALID: u64 = bit(0);
    /// Fetch-only bit (bit 6): a store through the ALE is refused (§8.4).
    pub const FETCH_ONLY: u64 = bit(6);
    /// Private bit (bit 7): the authority check applies.
    pub const PRIVATE: u64 = bit(7);
}

/// Read `N` bytes at a real address (§5.3.1): prefixing, then PGM 5 outside memory.
/// The structures read here are naturally aligned, so one fragment suffices.
fn read_real<const N: usize>(
    storage: &GuestStorage,
    vcpu: &Vcpu,
    real: u64,
) -> Result<(AbsoluteAddress, [u8; N]), Pgm> {
    let abs = vcpu.real_to_absolute(RealAddress(real));
    let mut b = [0u8; N];
    storage.read(abs, &mut b).map_err(|_| Pgm::ADDRESSING)?;
    Ok((abs, b))
}

fn dw(b: &[u8], i: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[i * 8..i * 8 + 8]);
    u64::from_be_bytes(x)
}

/// Translate access register `ar` to an ASCE, in the kernel's check order (§5.3).
/// `ar` must be below 16 (the memop validated it); larger values give ALET
/// specification rather than a panic. The trace records what was read even on failure.
pub fn ar_translation(
    storage: &GuestStorage,
    vcpu: &Vcpu,
    ar: u8,
    mode: AccessMode,
    trace: &mut ArtTrace,
) -> Result<Asce, Pgm> {
    let Some(&alet) = vcpu.ar.get(ar as usize) else {
        return Err(Pgm::ALET_SPECIFICATION);
    };
    trace.alet = alet;
    // Step 3-4: AR0 and ALET 0 mean primary, ALET 1 secondary.
    if ar == 0 || alet == 0 {
        return Ok(Asce(vcpu.cr[1]));
    }
    if alet == 1 {
        return Ok(Asce(vcpu.cr[7]));
    }
    if alet & alet::RESERVED != 0 {
        return Err(Pgm::ALET_SPECIFICATION);
    }
    let origin = if alet & alet::P != 0 {
        vcpu.cr[5]
    } else {
        vcpu.cr[2]
    } & 0x7FFF_FFC0;
    let (ald_abs, b) = read_real::<4>(storage, vcpu, origin + 16)?;
    let ald = u32::from_be_bytes(b);
    trace.ald = Some((ald_abs, ald));
    let alo = ((ald >> 7) & 0xFF_FFFF) as u64;
    let all = (ald & 0x7F) as u64;
    let alen = (alet & 0xFFFF) as u64;
    let alesn = ((alet >> 16) & 0xFF) as u64;
    if alen / 8 > all {
        return Err(Pgm::ALEN_TRANSLATION);
    }
    // Step 10: the ALE must lie below 2^31.
    let ale_addr = alo * 128 + alen * 16;
    if ale_addr > 0x7FFF_FFFF {
        return Err(Pgm::ADDRESSING);
    }
    let (ale_abs, b) = read_real::<16>(storage, vcpu, ale_addr)?;
    let (w0, w1) = (dw(&b, 0), dw(&b, 1));
    trace.ale = Some((ale_abs, [w0, w1]));
    let ale_invalid = w0 & ale::INVALID != 0;
    let ale_fetch_only = w0 & ale::FETCH_ONLY != 0;
    let ale_private = w0 & ale::PRIVATE != 0;
    let ale_alesn = (w0 >> 48) & 0xFF;
    let ale_aleax = (w0 >> 32) & 0xFFFF;
    let ale_asteo = (w1 >> 38) & 0x1FF_FFFF;
    let ale_astesn = w1 & 0xFFFF_FFFF;
    if ale_invalid {
        return Err(Pgm::ALEN_TRANSLATION);
    }
    if ale_alesn != alesn {
        return Err(Pgm::ALE_SEQUENCE);
    }
    let (aste_abs, b) = read_real::<24>(storage, vcpu, ale_asteo * 64)?;
    let (d0, d1, d2) = (dw(&b, 0), dw(&b, 1), dw(&b, 2));
    trace.aste = Some((aste_abs, [d0, d1, d2]));
    if d0 & (1 << 63) != 0 {
        return Err(Pgm::ASTE_VALIDITY);
    }
    if d2 & 0xFFFF_FFFF != ale_astesn {
        return Err(Pgm::ASTE_SEQUENCE);
    }
    if ale_private {
        // Step 15: only the secondary-authority bit of entry EAX is tested.
        let eax = (vcpu.cr[8] >> 16) & 0xFFFF;
        if ale_aleax != eax {
            let ato = (d0 >> 34) & 0x1FFF_FFFF;
            let atl = (d0 >> 4) & 0xFFF;
            if eax / 16 > atl {
                return Err(Pgm::EXTENDED_AUTHORITY);
            }
            let (auth_abs, b) = read_real::<1>(storage, vcpu, ato * 4 + eax / 4)?;
            trace.authority = Some((auth_abs, b[0]));
            if b[0] & (0x40 >> (2 * (eax & 3))) == 0 {
                return Err(Pgm::EXTENDED_AUTHORITY);
            }
        }
    }
    if ale_fetch_only && mode == AccessMode::Store {
        return Err(Pgm::PROTECTION);
    }
    Ok(Asce(d1))
}
