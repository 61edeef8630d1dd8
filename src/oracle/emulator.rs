//! Running the guest on QEMU (TCG) and Hercules, and reading its output.
//!
//! QEMU: `-kernel` with the ELF (entered in 64-bit mode at the ELF entry), the
//! parameter block and the blob through `-device loader`, output on the SCLP VT220
//! console; the disabled-wait PSW with address 0xfff makes QEMU exit with status 0.
//! Hercules: a `.ins` IPL of the raw image, the parameter block and the blob, with an
//! ESA/390 IPL PSW at 0; output through DIAGNOSE 8 `msgnoh`; an automatic-operator
//! rule quits on the disabled-wait message. The facts come from the example oracle in
//! `shared/oracle/README.md` (boot, console, exit, Hercules configuration).
#![forbid(unsafe_code)]

use super::OracleError;
use super::blob::{ENTRY_OFFSET, PARAM_OFFSET, param_block};
use super::guest::GuestImage;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// An emulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// `qemu-system-s390x -accel tcg`.
    Qemu,
    /// Hercules.
    Hercules,
}

impl Backend {
    /// Both, in report order.
    pub const ALL: [Backend; 2] = [Backend::Qemu, Backend::Hercules];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Qemu => "qemu",
            Backend::Hercules => "hercules",
        }
    }

    /// The backend with this name.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == s)
    }

    /// Index into per-backend arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The smallest main storage the emulator accepts, in MiB (Hercules rejects
    /// `MAINSIZE 1`).
    pub fn min_memory_mib(self) -> u64 {
        match self {
            Backend::Qemu => 1,
            Backend::Hercules => 2,
        }
    }
}

/// One access result as the guest printed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RawResult {
    /// 0: the stub's SVC came back; 1: program interruption.
    pub status: u8,
    /// The word at lowcore 0x8c: ILC halfword and interruption code (all ones if not
    /// stored).
    pub pic: u32,
    /// Exception access id at 0xa0 (0xff if not stored).
    pub eaid: u8,
    /// TEID at 0xa8 (all ones if not stored).
    pub teid: u64,
    /// r0 after the access: the value loaded (or the value stored).
    pub r0: u64,
    /// Address of the old PSW (SVC or program).
    pub opsw: u64,
}

impl RawResult {
    /// The "not stored" sentinel of the TEID.
    pub const NO_TEID: u64 = u64::MAX;
    /// The "not stored" sentinel of the exception access id.
    pub const NO_EAID: u8 = 0xff;
}

/// What one run printed.
#[derive(Clone, Debug, Default)]
pub struct RunOutput {
    /// Access results by op index.
    pub access: BTreeMap<usize, RawResult>,
    /// ISKE results by op index.
    pub keys: BTreeMap<usize, u8>,
    /// READ results by op index.
    pub reads: BTreeMap<usize, u64>,
    /// STFLE facility list.
    pub facilities: Option<[u64; 4]>,
    /// Whether the guest printed its end line.
    pub ended: bool,
    /// Error lines of the guest and the emulator's failure, if any.
    pub errors: Vec<String>,
    /// Wall time of the emulator process.
    pub elapsed: Duration,
}

impl RunOutput {
    /// The installed facility numbers (STFLE bits).
    pub fn facility_numbers(&self) -> Vec<u32> {
        let Some(f) = self.facilities else {
            return Vec::new();
        };
        (0..256u32)
            .filter(|&n| f[(n / 64) as usize] >> (63 - n % 64) & 1 == 1)
            .collect()
    }
}

/// Where to find the emulators.
#[derive(Clone, Debug)]
pub struct Emulators {
    /// QEMU executable.
    pub qemu: String,
    /// Hercules executable.
    pub hercules: String,
    /// Give up on a run after this long.
    pub timeout: Duration,
}

impl Default for Emulators {
    fn default() -> Self {
        Self {
            qemu: "qemu-system-s390x".into(),
            hercules: "hercules".into(),
            timeout: Duration::from_secs(120),
        }
    }
}

impl Emulators {
    /// The executable of a backend.
    pub fn exe(&self, b: Backend) -> &str {
        match b {
            Backend::Qemu => &self.qemu,
            Backend::Hercules => &self.hercules,
        }
    }

    /// Whether the backend's executable runs.
    pub fn available(&self, b: Backend) -> bool {
        !self.version(b).is_empty()
    }

    /// The first line of the emulator's version output ("" if it does not run).
    pub fn version(&self, b: Backend) -> String {
        let arg = match b {
            Backend::Qemu => "--version",
            // Hercules has no version option; `-h` prints its banner and usage.
            Backend::Hercules => "-h",
        };
        let Ok(out) = Command::new(self.exe(b))
            .arg(arg)
            .stdin(Stdio::null())
            .output()
        else {
            return String::new();
        };
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        text.lines()
            .map(str::trim)
            .find(|l| l.contains("QEMU emulator version") || l.contains("Version"))
            .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
            .unwrap_or("")
            .to_string()
    }

    /// Run the guest with `blob` loaded at `blob_addr` and `memory_mib` MiB of main
    /// storage.
    pub fn run(
        &self,
        backend: Backend,
        guest: &GuestImage,
        blob: &[u8],
        blob_addr: u64,
        memory_mib: u64,
    ) -> Result<RunOutput, OracleError> {
        let dir = TempDir::new(backend.name())?;
        let base = guest.base;
        let param_addr = base + PARAM_OFFSET;
        let io = |e: std::io::Error| OracleError::Io(format!("{}: {e}", dir.0.display()));
        std::fs::write(dir.0.join("param.bin"), param_block(blob_addr)).map_err(io)?;
        std::fs::write(dir.0.join("blob.bin"), blob).map_err(io)?;
        let mut cmd = match backend {
            Backend::Qemu => {
                let mut c = Command::new(&self.qemu);
                c.args(["-nodefaults", "-nographic", "-machine"])
                    .arg("s390-ccw-virtio,accel=tcg")
                    .args(["-cpu", "max", "-smp", "1", "-m"])
                    .arg(format!("{memory_mib}M"))
                    .args(["-chardev", "stdio,id=con0"])
                    .args(["-device", "sclpconsole,chardev=con0"])
                    .args(["-action", "panic=exit-failure", "-kernel"])
                    .arg(&guest.elf)
                    .arg("-device")
                    .arg(format!(
                        "loader,file={},addr={param_addr:#x},force-raw=on",
                        dir.0.join("param.bin").display()
                    ))
                    .arg("-device")
                    .arg(format!(
                        "loader,file={},addr={blob_addr:#x},force-raw=on",
                        dir.0.join("blob.bin").display()
                    ));
                c
            }
            Backend::Hercules => {
                std::fs::copy(&guest.img, dir.0.join("guest.img")).map_err(io)?;
                // ESA/390 IPL PSW: EC mode, 31-bit, at the guest's entry.
                let mut psw = Vec::new();
                psw.extend_from_slice(&0x0008_0000u32.to_be_bytes());
                psw.extend_from_slice(
                    &(0x8000_0000u32 | (base + ENTRY_OFFSET) as u32).to_be_bytes(),
                );
                std::fs::write(dir.0.join("psw.bin"), psw).map_err(io)?;
                // All files of a .ins list must be in its directory.
                std::fs::write(
                    dir.0.join("guest.ins"),
                    format!(
                        "* s390-gaccess oracle\npsw.bin 0x0\nguest.img {base:#x}\n\
                         param.bin {param_addr:#x}\nblob.bin {blob_addr:#x}\n"
                    ),
                )
                .map_err(io)?;
                std::fs::write(
                    dir.0.join("guest.cnf"),
                    format!(
                        "ARCHMODE z/Arch\nMAINSIZE {memory_mib}\nNUMCPU 1\n\
                         DIAG8CMD ENABLE NOECHO\nOSTAILOR QUIET\n000C 3505 /dev/null eof\n"
                    ),
                )
                .map_err(io)?;
                std::fs::write(
                    dir.0.join("guest.rc"),
                    "hao tgt HHCCP011I\nhao cmd quit\nipl guest.ins\n",
                )
                .map_err(io)?;
                let mut c = Command::new(&self.hercules);
                c.current_dir(&dir.0).env("HERCULES_RC", "guest.rc").args([
                    "-f",
                    "guest.cnf",
                    "-d",
                ]);
                c
            }
        };
        let out_path = dir.0.join("stdout.txt");
        let err_path = dir.0.join("stderr.txt");
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).map_err(io)?)
            .stderr(std::fs::File::create(&err_path).map_err(io)?);
        let start = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| OracleError::Emulator(format!("cannot start {}: {e}", backend.name())))?;
        // Hercules occasionally stays up after the guest's final disabled wait (the
        // automatic-operator rule does not fire): once the guest's end line is out,
        // give the emulator a second to exit by itself, then stop it.
        let mut finished: Option<Instant> = None;
        let mut polls = 0u32;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if start.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => {
                    polls += 1;
                    if finished.is_none() && polls.is_multiple_of(20) && output_ended(&out_path) {
                        finished = Some(Instant::now());
                    }
                    if finished.is_some_and(|t| t.elapsed() > Duration::from_secs(1)) {
                        let _ = child.kill();
                        let _ = child.wait();
                        break Some(std::process::ExitStatus::default());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(OracleError::Emulator(format!("{}: {e}", backend.name()))),
            }
        };
        let elapsed = start.elapsed();
        let stdout = std::fs::read(&out_path).map_err(io)?;
        let stderr = std::fs::read(&err_path).map_err(io)?;
        let mut out = parse_output(&String::from_utf8_lossy(&stdout));
        out.elapsed = elapsed;
        match status {
            None => out.errors.push(format!(
                "{} timed out after {:?}",
                backend.name(),
                self.timeout
            )),
            Some(s) if !s.success() => out.errors.push(format!(
                "{} exited with {s}: {}",
                backend.name(),
                String::from_utf8_lossy(&stderr).trim()
            )),
            Some(_) => {}
        }
        if !out.ended {
            out.errors.push(format!(
                "{}: the guest did not finish; last output: {}",
                backend.name(),
                String::from_utf8_lossy(&stdout)
                    .lines()
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        Ok(out)
    }
}

/// Whether the guest's output file already holds its end (or fatal) line.
fn output_ended(path: &std::path::Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut tail = Vec::new();
    let _ = f.read_to_end(&mut tail);
    let t = String::from_utf8_lossy(&tail);
    t.contains("GX:END") || t.contains("GX:FATAL")
}

/// Parse the guest's `GX:` lines (anywhere in a line: Hercules prefixes its own).
pub fn parse_output(text: &str) -> RunOutput {
    let mut out = RunOutput::default();
    for line in text.lines() {
        let Some(pos) = line.find("GX:") else {
            continue;
        };
        let f: Vec<&str> = line[pos + 3..].split_whitespace().collect();
        let hex = |i: usize| f.get(i).and_then(|s| u64::from_str_radix(s, 16).ok());
        match f.first().copied() {
            Some("BEGIN") => {
                if let (Some(a), Some(b), Some(c), Some(d)) = (hex(1), hex(2), hex(3), hex(4)) {
                    out.facilities = Some([a, b, c, d]);
                }
            }
            Some("END") => out.ended = true,
            Some("A") => {
                if let (Some(i), Some(s), Some(p), Some(e), Some(t), Some(r), Some(o)) =
                    (hex(1), hex(2), hex(3), hex(4), hex(5), hex(6), hex(7))
                {
                    out.access.insert(
                        i as usize,
                        RawResult {
                            status: s as u8,
                            pic: p as u32,
                            eaid: e as u8,
                            teid: t,
                            r0: r,
                            opsw: o,
                        },
                    );
                }
            }
            Some("K") => {
                if let (Some(i), Some(k)) = (hex(1), hex(2)) {
                    out.keys.insert(i as usize, k as u8);
                }
            }
            Some("M") => {
                if let (Some(i), Some(v)) = (hex(1), hex(2)) {
                    out.reads.insert(i as usize, v);
                }
            }
            _ => out.errors.push(format!("guest: {}", &line[pos..])),
        }
    }
    out
}

/// A private temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Result<Self, OracleError> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!(
            "s390-gaccess-oracle-{tag}-{}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p)
            .map_err(|e| OracleError::Io(format!("{}: {e}", p.display())))?;
        Ok(Self(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_guest_lines() {
        let text = "GX:BEGIN 8000000000000000 0 0 0 e0\nHHC01603I GX:A 000002 1 00060011 ff 0000000000101800 0 2198\nGX:K 000003 36\nGX:END 000004\n";
        let o = parse_output(text);
        assert!(o.ended);
        assert_eq!(o.facility_numbers(), vec![0]);
        let a = o.access[&2];
        assert_eq!((a.status, a.pic & 0xffff, a.eaid), (1, 0x11, 0xff));
        assert_eq!(a.teid, 0x101800);
        assert_eq!(o.keys[&3], 0x36);
    }
}
