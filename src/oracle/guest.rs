//! Building the oracle guest (`oracle/guest/`) with the s390x cross compiler.
//!
//! The sources are compiled into the binary (`include_str!`), so an installed
//! `s390-gaccess` builds the same guest as the source tree. The build goes into a
//! cache directory named after a hash of the sources and flags; an existing build is
//! reused.
#![forbid(unsafe_code)]

use super::OracleError;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest sources, by file name.
pub const SOURCES: [(&str, &str); 4] = [
    ("layout.h", include_str!("../../oracle/guest/layout.h")),
    ("entry.S", include_str!("../../oracle/guest/entry.S")),
    ("main.c", include_str!("../../oracle/guest/main.c")),
    ("guest.ld", include_str!("../../oracle/guest/guest.ld")),
];

/// Compiler flags; the same as `oracle/guest/Makefile`. `-march=z900` keeps the image
/// valid for Hercules 3.13; soft-float and no vector registers because CR0 leaves the
/// AFP and vector facilities off after reset.
pub const CFLAGS: [&str; 14] = [
    "-O2",
    "-m64",
    "-march=z900",
    "-ffreestanding",
    "-fno-builtin",
    "-fno-pic",
    "-fno-pie",
    "-msoft-float",
    "-mno-vx",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-fno-delete-null-pointer-checks",
    "-Wall",
    "-Wextra",
];

/// Linker flags; the same as the Makefile (which adds the base address with
/// `--defsym`, as [`build`] does).
pub const LDFLAGS: [&str; 7] = [
    "-nostdlib",
    "-static",
    "-no-pie",
    "-Wl,-T,guest.ld",
    "-Wl,--build-id=none",
    "-Wl,-z,max-page-size=4096",
    "-Wl,--no-warn-rwx-segments",
];

/// A built guest.
#[derive(Debug, Clone)]
pub struct GuestImage {
    /// The ELF, for QEMU's `-kernel`.
    pub elf: PathBuf,
    /// The raw image from the stub page (the base) on, for Hercules' `.ins` IPL.
    pub img: PathBuf,
    /// The base address the guest is linked for.
    pub base: u64,
}

/// FNV-1a, 64 bits: names the cache directory after the sources.
pub fn fnv1a(data: &[u8], mut h: u64) -> u64 {
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn source_hash(cross: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325;
    for (name, text) in SOURCES {
        h = fnv1a(name.as_bytes(), h);
        h = fnv1a(text.as_bytes(), h);
    }
    for f in CFLAGS.iter().chain(LDFLAGS.iter()) {
        h = fnv1a(f.as_bytes(), h);
    }
    fnv1a(cross.as_bytes(), h)
}

/// The default cache directory: `$S390_GACCESS_ORACLE_BUILD`, else
/// `target/oracle-build` of the source tree when it exists, else the temp directory.
pub fn default_build_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("S390_GACCESS_ORACLE_BUILD") {
        return PathBuf::from(d);
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    if target.is_dir() {
        return target.join("oracle-build");
    }
    std::env::temp_dir().join("s390-gaccess-oracle-build")
}

/// Whether the cross compiler `{cross}gcc` can be run.
pub fn compiler_available(cross: &str) -> bool {
    Command::new(format!("{cross}gcc"))
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Build the guest linked for address `base` (or reuse a build) under `cache`, with
/// the tool prefix `cross` (`s390x-linux-gnu-`).
pub fn build(cache: &Path, cross: &str, base: u64) -> Result<GuestImage, OracleError> {
    let dir = cache.join(format!("guest-{:016x}-{base:x}", source_hash(cross)));
    let image = GuestImage {
        elf: dir.join("guest.elf"),
        img: dir.join("guest.img"),
        base,
    };
    if image.elf.is_file() && image.img.is_file() {
        return Ok(image);
    }
    let io = |e: std::io::Error| OracleError::Io(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(io)?;
    for (name, text) in SOURCES {
        std::fs::write(dir.join(name), text).map_err(io)?;
    }
    // Build under temporary names and rename, so that a concurrent or interrupted
    // build never leaves a half-written image that a later run would reuse.
    let tmp = format!("guest.elf.{}", std::process::id());
    let mut cc = Command::new(format!("{cross}gcc"));
    cc.current_dir(&dir)
        .args(CFLAGS)
        .arg(format!("-DGUEST_BASE={base:#x}"))
        .args(LDFLAGS)
        .arg(format!("-Wl,--defsym=GUEST_BASE={base:#x}"))
        .args(["-o", &tmp, "entry.S", "main.c", "-lgcc"]);
    run_tool(cc)?;
    let tmp_img = format!("guest.img.{}", std::process::id());
    let mut objcopy = Command::new(format!("{cross}objcopy"));
    objcopy
        .current_dir(&dir)
        .args(["-O", "binary", &tmp, &tmp_img]);
    run_tool(objcopy)?;
    std::fs::rename(dir.join(&tmp_img), &image.img).map_err(io)?;
    std::fs::rename(dir.join(&tmp), &image.elf).map_err(io)?;
    Ok(image)
}

fn run_tool(mut cmd: Command) -> Result<(), OracleError> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| OracleError::Build(format!("{shown}: {e}")))?;
    if !out.status.success() {
        return Err(OracleError::Build(format!(
            "{shown} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}
