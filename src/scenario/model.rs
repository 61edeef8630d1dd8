//! The typed, validated model of a scenario file (scenario-format.md).
//!
//! [`crate::scenario::parse`] produces a [`Scenario`]; everything in it has been checked
//! as far as that is possible without running the engine (alignment, ranges, references
//! between parts, exactly one kind per step). Defaults of the format are already applied,
//! except where the model keeps an `Option` to say "not given" because the meaning of the
//! default depends on other state (for example [`CpuSpec::protected`]).
//!
//! Bit numbers follow the IBM convention: bit `n` of a 64-bit value is `1 << (63 - n)`.
#![forbid(unsafe_code)]

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// Free text; defaults to the file name (last path component).
    pub name: String,
    /// Which kernel behaviour to model.
    pub profile: Profile,
    /// The machine.
    pub vm: VmSpec,
    /// DAT address spaces built into guest memory, in file order.
    pub spaces: Vec<SpaceSpec>,
    /// vCPU 0.
    pub cpu: CpuSpec,
    /// Steps, in file order (results number them from 1).
    pub steps: Vec<Step>,
}

impl Scenario {
    /// The space named `name`, if any.
    pub fn space(&self, name: &str) -> Option<&SpaceSpec> {
        self.spaces.iter().find(|s| s.name == name)
    }

    /// Whether the vCPU is protected: [`CpuSpec::protected`], defaulting to
    /// [`VmSpec::protected`].
    pub fn cpu_protected(&self) -> bool {
        self.cpu.protected.unwrap_or(self.vm.protected)
    }
}

/// Kernel behaviour (`profile`): the two versions differ where kernel-semantics.md §6.4
/// says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// `"linux-7.0"`: the 2026 gmap rewrite and later. The default.
    #[default]
    Linux70,
    /// `"linux-6.3"`: 6.3 up to the rewrite.
    Linux63,
}

impl Profile {
    /// The spelling in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Linux70 => "linux-7.0",
            Profile::Linux63 => "linux-6.3",
        }
    }
}

/// Facility numbers with names in the format.
pub mod facility {
    /// EDAT-1, `"edat1"`.
    pub const EDAT1: u32 = 8;
    /// EDAT-2, `"edat2"`.
    pub const EDAT2: u32 = 78;
    /// Instruction-execution protection, `"iep"`.
    pub const IEP: u32 = 130;
    /// Enhanced suppression on protection 2, `"esop2"`.
    pub const ESOP2: u32 = 131;
    /// Name → number, as files spell them.
    pub const NAMES: [(&str, u32); 4] = [
        ("edat1", EDAT1),
        ("edat2", EDAT2),
        ("iep", IEP),
        ("esop2", ESOP2),
    ];
    /// The default facility list (all four named facilities).
    pub const DEFAULT: [u32; 4] = [EDAT1, EDAT2, IEP, ESOP2];

    /// The number of a named facility.
    pub fn by_name(name: &str) -> Option<u32> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

/// The machine (`[vm]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    /// Guest memory: non-empty, 4 KiB-aligned, non-overlapping slots, in file order.
    /// `memory = SIZE` gives one slot at absolute 0. Holes are not memory.
    pub memslots: Vec<MemslotSpec>,
    /// Installed facility numbers, sorted ascending, without duplicates.
    pub facilities: Vec<u32>,
    /// Whether the guest uses storage keys: `storage-keys` if given, otherwise whether
    /// [`VmSpec::keys`] is non-empty.
    pub storage_keys: bool,
    /// Protected-virtualization guest.
    pub protected: bool,
    /// Storage-key settings, applied in order (after keys are put in use).
    pub keys: Vec<KeySetting>,
    /// Initial memory contents at absolute addresses, written in order after the DAT
    /// tables are built. Each lies entirely inside memory.
    pub data: Vec<DataSpec>,
}

impl VmSpec {
    /// Whether `addr` lies in some memslot.
    pub fn in_memory(&self, addr: u64) -> bool {
        self.memslots.iter().any(|m| m.contains(addr))
    }

    /// Whether every byte of `start .. start+len` lies in memory (true for `len == 0`).
    pub fn range_in_memory(&self, start: u64, len: u64) -> bool {
        let Some(end) = u128::from(start).checked_add(u128::from(len)) else {
            return false;
        };
        let mut pos = u128::from(start);
        while pos < end {
            let Some(slot) = self
                .memslots
                .iter()
                .find(|m| u128::from(m.start) <= pos && pos < m.end())
            else {
                return false;
            };
            pos = slot.end();
        }
        true
    }

    /// Whether `facility` is installed.
    pub fn has_facility(&self, facility: u32) -> bool {
        self.facilities.binary_search(&facility).is_ok()
    }
}

/// One memslot: `size` bytes of guest memory at absolute `start`. Both are multiples of
/// 4 KiB, `size > 0`, and `start + size` does not overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemslotSpec {
    /// First absolute address.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
}

impl MemslotSpec {
    /// One past the last address, as `u128` so that no case can overflow.
    pub fn end(&self) -> u128 {
        u128::from(self.start) + u128::from(self.size)
    }

    /// Whether `addr` lies in this slot.
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.start && u128::from(addr) < self.end()
    }
}

/// Which frames a storage-key setting addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameSelection {
    /// `at = ADDR`: the 4 KiB frame holding ADDR.
    At(u64),
    /// `range = [START, END]`: every frame overlapping `START..END-1` (`START < END`).
    Range {
        /// First address.
        start: u64,
        /// One past the last address.
        end: u64,
    },
}

/// Storage-key byte layout (`union skey`): ACC bits 0-3, F bit 4, R bit 5, C bit 6.
pub mod skey {
    /// Access-control bits.
    pub const ACC_MASK: u8 = 0xF0;
    /// Fetch protection.
    pub const F: u8 = 0x08;
    /// Reference.
    pub const R: u8 = 0x04;
    /// Change.
    pub const C: u8 = 0x02;

    /// The key byte for the given fields (`acc` is masked to 4 bits).
    pub fn byte(acc: u8, f: bool, r: bool, c: bool) -> u8 {
        ((acc & 0xF) << 4) | if f { F } else { 0 } | if r { R } else { 0 } | if c { C } else { 0 }
    }
}

/// A storage-key setting (`[[vm.key]]` entries and `set-key` steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySetting {
    /// The frames addressed.
    pub frames: FrameSelection,
    /// The key byte to store: `byte = ...`, or built from `acc`, `f`, `r`, `c`
    /// (see [`skey::byte`]). Passed through as written; in particular bit 7 is not
    /// checked here.
    pub byte: u8,
}

/// Bytes at an absolute address (`vm.data` entries, `write` and `check` steps).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DataSpec {
    /// First absolute address; the bytes end at or below 2^64 (`at + len <= 2^64`).
    pub at: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// ASCE designation type (`type` of a space).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DesignationType {
    /// `"region-first"`, DT 3.
    RegionFirst,
    /// `"region-second"`, DT 2.
    RegionSecond,
    /// `"region-third"`, DT 1.
    RegionThird,
    /// `"segment"`, DT 0.
    Segment,
}

impl DesignationType {
    /// The DT field value (ASCE bits 60-61).
    pub fn dt(self) -> u64 {
        match self {
            DesignationType::RegionFirst => 3,
            DesignationType::RegionSecond => 2,
            DesignationType::RegionThird => 1,
            DesignationType::Segment => 0,
        }
    }

    /// The table level the ASCE points to.
    pub fn top_level(self) -> Level {
        match self {
            DesignationType::RegionFirst => Level::RegionFirst,
            DesignationType::RegionSecond => Level::RegionSecond,
            DesignationType::RegionThird => Level::RegionThird,
            DesignationType::Segment => Level::Segment,
        }
    }

    /// The number of address bits the designation can translate: addresses at or above
    /// `1 << bits` cause an ASCE-type exception (64 for region-first).
    pub fn address_bits(self) -> u32 {
        match self {
            DesignationType::RegionFirst => 64,
            DesignationType::RegionSecond => 53,
            DesignationType::RegionThird => 42,
            DesignationType::Segment => 31,
        }
    }

    /// One past the highest address the designation can translate.
    pub fn address_limit(self) -> u128 {
        1u128 << self.address_bits()
    }

    /// The spelling in files.
    pub fn as_str(self) -> &'static str {
        match self {
            DesignationType::RegionFirst => "region-first",
            DesignationType::RegionSecond => "region-second",
            DesignationType::RegionThird => "region-third",
            DesignationType::Segment => "segment",
        }
    }
}

/// A DAT table level, highest first (the derived order is walk order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// `"region-first"`.
    RegionFirst,
    /// `"region-second"`.
    RegionSecond,
    /// `"region-third"`.
    RegionThird,
    /// `"segment"`.
    Segment,
    /// `"page"`.
    Page,
}

impl Level {
    /// The spelling in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::RegionFirst => "region-first",
            Level::RegionSecond => "region-second",
            Level::RegionThird => "region-third",
            Level::Segment => "segment",
            Level::Page => "page",
        }
    }
}

/// ASCE control bits (kernel-semantics.md §5.6).
pub mod asce {
    /// G, bit 54.
    pub const G: u64 = 0x200;
    /// P (private space), bit 55.
    pub const P: u64 = 0x100;
    /// S (storage-alteration event), bit 56.
    pub const S: u64 = 0x80;
    /// X (space-switch event), bit 57.
    pub const X: u64 = 0x40;
    /// R (real space), bit 58.
    pub const R: u64 = 0x20;
}

/// A DAT address space built by the table builder (`[[space]]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpaceSpec {
    /// Unique name, referenced as `"space:NAME"` by control registers.
    pub name: String,
    /// ASCE designation type.
    pub designation: DesignationType,
    /// Absolute address where the builder allocates this space's tables, upwards.
    pub tables: u64,
    /// ASCE table length, 0..=3 (default 3).
    pub tl: u8,
    /// ASCE P bit (private space).
    pub private: bool,
    /// ASCE R bit (real space).
    pub real: bool,
    /// ASCE G bit.
    pub g: bool,
    /// ASCE S bit.
    pub s: bool,
    /// ASCE X bit.
    pub x: bool,
    /// Mappings, in file order.
    pub maps: Vec<MapSpec>,
    /// Entry edits, applied in order after all mappings.
    pub edits: Vec<EditSpec>,
}

impl SpaceSpec {
    /// The ASCE without its origin: flags, DT and TL. The ASCE is
    /// `origin | asce_low_bits()`, where the builder chooses the origin.
    pub fn asce_low_bits(&self) -> u64 {
        let flag = |on: bool, bit: u64| if on { bit } else { 0 };
        flag(self.g, asce::G)
            | flag(self.private, asce::P)
            | flag(self.s, asce::S)
            | flag(self.x, asce::X)
            | flag(self.real, asce::R)
            | (self.designation.dt() << 2)
            | u64::from(self.tl & 3)
    }
}

/// Page (frame) size of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PageSize {
    /// `"4K"`: page-table entries; the frame is a real address (prefixing applies).
    K4,
    /// `"1M"`: segment-table entries with FC=1 (EDAT-1).
    M1,
    /// `"2G"`: region-third-table entries with FC=1 (EDAT-2).
    G2,
}

impl PageSize {
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        match self {
            PageSize::K4 => 1 << 12,
            PageSize::M1 => 1 << 20,
            PageSize::G2 => 1 << 31,
        }
    }

    /// The table level of the leaf entries.
    pub fn leaf_level(self) -> Level {
        match self {
            PageSize::K4 => Level::Page,
            PageSize::M1 => Level::Segment,
            PageSize::G2 => Level::RegionThird,
        }
    }

    /// The spelling in files.
    pub fn as_str(self) -> &'static str {
        match self {
            PageSize::K4 => "4K",
            PageSize::M1 => "1M",
            PageSize::G2 => "2G",
        }
    }
}

/// A mapping `virt .. virt+size` → `abs .. abs+size`. `virt`, `abs` and `size` are
/// multiples of the page size, `size > 0`, neither range overflows, and the virtual range
/// lies below the designation's [`DesignationType::address_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MapSpec {
    /// First virtual address.
    pub virt: u64,
    /// First absolute (for 4 KiB pages: real) frame address.
    pub abs: u64,
    /// Length in bytes.
    pub size: u64,
    /// Page size.
    pub page: PageSize,
    /// Set the P bit of the leaf entries.
    pub protect: bool,
    /// Set the IEP bit of the leaf entries.
    pub iep: bool,
}

/// How an edit changes an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryChange {
    /// `set = MASK, clear = MASK` (either may be omitted, as 0): the entry becomes
    /// `(entry & !clear) | set`.
    SetClear {
        /// Bits to set.
        set: u64,
        /// Bits to clear.
        clear: u64,
    },
    /// `value = RAW`: the whole 8-byte entry.
    Value(u64),
}

impl EntryChange {
    /// The new entry value given the old one. Clearing is applied before setting.
    pub fn apply(self, old: u64) -> u64 {
        match self {
            EntryChange::SetClear { set, clear } => (old & !clear) | set,
            EntryChange::Value(v) => v,
        }
    }
}

/// An edit of the entry that the walk for `virt` reads at `level`. `level` is at or below
/// the space's top level and `virt` below its address limit; whether the walk reaches the
/// entry is for the builder to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EditSpec {
    /// The virtual address whose walk selects the entry.
    pub virt: u64,
    /// The table level.
    pub level: Level,
    /// The change.
    pub change: EntryChange,
}

/// PSW mask bits used by the format.
pub mod psw {
    /// DAT mode, bit 5.
    pub const DAT: u64 = 0x0400_0000_0000_0000;
    /// PSW key, bits 8-11.
    pub const KEY_MASK: u64 = 0x00F0_0000_0000_0000;
    /// Shift of the PSW key field.
    pub const KEY_SHIFT: u32 = 52;
    /// Problem state, bit 15.
    pub const PROBLEM: u64 = 0x0001_0000_0000_0000;
    /// Address-space control, bits 16-17.
    pub const AS_MASK: u64 = 0x0000_C000_0000_0000;
    /// Shift of the address-space control field.
    pub const AS_SHIFT: u32 = 46;
    /// Extended addressing, bit 31.
    pub const EA: u64 = 0x0000_0001_0000_0000;
    /// Basic addressing, bit 32.
    pub const BA: u64 = 0x0000_0000_8000_0000;
    /// The default mask: DAT off, key 0, primary, 64-bit.
    pub const DEFAULT: u64 = EA | BA;
}

/// Address-space control (PSW bits 16-17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AddressSpace {
    /// `"primary"`, 00.
    #[default]
    Primary,
    /// `"ar"`, 01.
    AccessRegister,
    /// `"secondary"`, 10.
    Secondary,
    /// `"home"`, 11.
    Home,
}

impl AddressSpace {
    /// The 2-bit field value.
    pub fn bits(self) -> u64 {
        match self {
            AddressSpace::Primary => 0,
            AddressSpace::AccessRegister => 1,
            AddressSpace::Secondary => 2,
            AddressSpace::Home => 3,
        }
    }
}

/// Addressing mode (PSW bits 31-32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AddressingMode {
    /// 24-bit: EA 0, BA 0.
    Bits24,
    /// 31-bit: EA 0, BA 1.
    Bits31,
    /// 64-bit: EA 1, BA 1. The default.
    #[default]
    Bits64,
}

/// The table form of a PSW mask, `{ dat, key, as, amode, problem }`; omitted fields take
/// the [`Default`] values (DAT off, key 0, primary, 64-bit, supervisor state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PswFields {
    /// DAT mode.
    pub dat: bool,
    /// PSW key, 0..=15.
    pub key: u8,
    /// Address-space control.
    pub address_space: AddressSpace,
    /// Addressing mode.
    pub amode: AddressingMode,
    /// Problem state.
    pub problem: bool,
}

impl PswFields {
    /// The 64-bit PSW mask.
    pub fn mask(&self) -> u64 {
        let mut m = 0;
        if self.dat {
            m |= psw::DAT;
        }
        m |= (u64::from(self.key & 0xF) << psw::KEY_SHIFT) & psw::KEY_MASK;
        if self.problem {
            m |= psw::PROBLEM;
        }
        m |= self.address_space.bits() << psw::AS_SHIFT;
        m |= match self.amode {
            AddressingMode::Bits24 => 0,
            AddressingMode::Bits31 => psw::BA,
            AddressingMode::Bits64 => psw::EA | psw::BA,
        };
        m
    }
}

/// A control-register value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CrValue {
    /// A literal 64-bit value.
    Raw(u64),
    /// `"space:NAME"`: the ASCE of that space (the name is known to exist).
    Space(String),
}

impl Default for CrValue {
    fn default() -> Self {
        CrValue::Raw(0)
    }
}

/// The default CR0 value, `0xE0`.
pub const DEFAULT_CR0: u64 = 0xE0;

/// The default SIDA size, 4096.
pub const DEFAULT_SIDA_SIZE: u32 = 4096;

/// vCPU 0 (`[cpu]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuSpec {
    /// The PSW mask (the table form is converted, see [`PswFields::mask`]).
    pub psw_mask: u64,
    /// Control registers 0-15 (default CR0 = 0xE0, others 0).
    pub cr: [CrValue; 16],
    /// Access registers 0-15.
    pub ar: [u32; 16],
    /// The prefix register value, as written (the kernel uses `prefix & 0x7FFFE000`).
    pub prefix: u32,
    /// Protected vCPU; `None` means "as the VM" ([`Scenario::cpu_protected`]).
    pub protected: Option<bool>,
    /// The secure instruction data area: exactly `sida_size` bytes (the given bytes,
    /// padded with zeros).
    pub sida: Vec<u8>,
    /// SIDA size in bytes, a multiple of 4096.
    pub sida_size: u32,
}

impl Default for CpuSpec {
    fn default() -> Self {
        let mut cr: [CrValue; 16] = Default::default();
        cr[0] = CrValue::Raw(DEFAULT_CR0);
        Self {
            psw_mask: psw::DEFAULT,
            cr,
            ar: [0; 16],
            prefix: 0,
            protected: None,
            sida: vec![0; DEFAULT_SIDA_SIZE as usize],
            sida_size: DEFAULT_SIDA_SIZE,
        }
    }
}

/// One step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based source line where the step starts, where known (the `[[step]]` header or
    /// inline table in TOML, the opening brace in JSON).
    pub line: Option<usize>,
    /// What the step does.
    pub kind: StepKind,
    /// Expected results; `None` when the step has no `expect`.
    pub expect: Option<Expect>,
}

/// The kinds of step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// `memop`: one `KVM_S390_MEM_OP` call.
    Memop(MemopStep),
    /// `write`: store bytes at an absolute address directly.
    Write(DataSpec),
    /// `set`: change the named vCPU registers (boxed: it is by far the largest kind).
    Set(Box<SetStep>),
    /// `set-key`: set storage keys as `KVM_S390_SET_SKEYS` does.
    SetKey(KeySetting),
    /// `keyop`: one `KVM_S390_KEYOP` call.
    Keyop(KeyopStep),
    /// `get-skeys`: one `KVM_S390_GET_SKEYS` call.
    GetSkeys(GetSkeysStep),
    /// `deliver = true`: deliver the pending program interruption.
    Deliver,
    /// `translate`: translate one logical address.
    Translate(TranslateStep),
    /// `tprot`: TEST PROTECTION as KVM emulates it.
    Tprot(TprotStep),
    /// `check`: assert absolute memory holds these bytes.
    Check(DataSpec),
    /// `check-key`: assert a frame's storage-key byte.
    CheckKey(CheckKeyStep),
}

impl StepKind {
    /// The step key as files spell it (also the `kind` of results).
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Memop(_) => "memop",
            StepKind::Write(_) => "write",
            StepKind::Set(_) => "set",
            StepKind::SetKey(_) => "set-key",
            StepKind::Keyop(_) => "keyop",
            StepKind::GetSkeys(_) => "get-skeys",
            StepKind::Deliver => "deliver",
            StepKind::Translate(_) => "translate",
            StepKind::Tprot(_) => "tprot",
            StepKind::Check(_) => "check",
            StepKind::CheckKey(_) => "check-key",
        }
    }
}

/// `KVM_S390_MEM_OP` op codes with names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemOpKind {
    /// `"logical-read"`, 0.
    LogicalRead,
    /// `"logical-write"`, 1.
    LogicalWrite,
    /// `"sida-read"`, 2.
    SidaRead,
    /// `"sida-write"`, 3.
    SidaWrite,
    /// `"absolute-read"`, 4.
    AbsoluteRead,
    /// `"absolute-write"`, 5.
    AbsoluteWrite,
    /// `"absolute-cmpxchg"`, 6.
    AbsoluteCmpxchg,
}

impl MemOpKind {
    /// All kinds, in op-number order.
    pub const ALL: [MemOpKind; 7] = [
        MemOpKind::LogicalRead,
        MemOpKind::LogicalWrite,
        MemOpKind::SidaRead,
        MemOpKind::SidaWrite,
        MemOpKind::AbsoluteRead,
        MemOpKind::AbsoluteWrite,
        MemOpKind::AbsoluteCmpxchg,
    ];

    /// The `op` field value.
    pub fn number(self) -> u32 {
        match self {
            MemOpKind::LogicalRead => 0,
            MemOpKind::LogicalWrite => 1,
            MemOpKind::SidaRead => 2,
            MemOpKind::SidaWrite => 3,
            MemOpKind::AbsoluteRead => 4,
            MemOpKind::AbsoluteWrite => 5,
            MemOpKind::AbsoluteCmpxchg => 6,
        }
    }

    /// The kind with this op number.
    pub fn from_number(n: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.number() == n)
    }

    /// The spelling in files.
    pub fn as_str(self) -> &'static str {
        match self {
            MemOpKind::LogicalRead => "logical-read",
            MemOpKind::LogicalWrite => "logical-write",
            MemOpKind::SidaRead => "sida-read",
            MemOpKind::SidaWrite => "sida-write",
            MemOpKind::AbsoluteRead => "absolute-read",
            MemOpKind::AbsoluteWrite => "absolute-write",
            MemOpKind::AbsoluteCmpxchg => "absolute-cmpxchg",
        }
    }

    /// The ioctl a named op goes to by default: vCPU for logical and SIDA ops, VM for
    /// absolute ops.
    pub fn default_ioctl(self) -> Ioctl {
        match self {
            MemOpKind::LogicalRead
            | MemOpKind::LogicalWrite
            | MemOpKind::SidaRead
            | MemOpKind::SidaWrite => Ioctl::Vcpu,
            MemOpKind::AbsoluteRead | MemOpKind::AbsoluteWrite | MemOpKind::AbsoluteCmpxchg => {
                Ioctl::Vm
            }
        }
    }

    /// Whether the op reads guest memory into the user buffer.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            MemOpKind::LogicalRead | MemOpKind::SidaRead | MemOpKind::AbsoluteRead
        )
    }
}

/// The `op` of a memop as written: a name or a raw number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemOpCode {
    /// A named op.
    Named(MemOpKind),
    /// A raw number (kept even when it equals a named op's number).
    Raw(u32),
}

impl MemOpCode {
    /// The value of the `op` field.
    pub fn number(self) -> u32 {
        match self {
            MemOpCode::Named(k) => k.number(),
            MemOpCode::Raw(n) => n,
        }
    }

    /// The kind the kernel will see: named ops, and raw numbers 0..=6.
    pub fn kind(self) -> Option<MemOpKind> {
        MemOpKind::from_number(self.number())
    }
}

/// Which file descriptor an ioctl goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ioctl {
    /// `"vm"`.
    Vm,
    /// `"vcpu"`.
    Vcpu,
}

/// `KVM_S390_MEMOP_F_*` flag bits.
pub mod memop_flags {
    /// `"check-only"`.
    pub const CHECK_ONLY: u64 = 1 << 0;
    /// `"inject-exception"`.
    pub const INJECT_EXCEPTION: u64 = 1 << 1;
    /// `"skey-protection"`.
    pub const SKEY_PROTECTION: u64 = 1 << 2;
    /// Name → bit, as files spell them.
    pub const NAMES: [(&str, u64); 3] = [
        ("check-only", CHECK_ONLY),
        ("inject-exception", INJECT_EXCEPTION),
        ("skey-protection", SKEY_PROTECTION),
    ];
}

/// Whether a user-space buffer address is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UserBuf {
    /// `"valid"`, the default.
    #[default]
    Valid,
    /// `"null"`: every copy to or from it fails as `copy_*_user` would.
    Null,
}

/// A `memop` step: the fields of `struct kvm_s390_mem_op` plus the user buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemopStep {
    /// The op.
    pub op: MemOpCode,
    /// The ioctl (defaults applied; always explicit for raw ops).
    pub ioctl: Ioctl,
    /// Guest address.
    pub gaddr: u64,
    /// Byte count: `size`, else the length of `data`, else of `old`.
    pub size: u32,
    /// Flag bits (names are converted, see [`memop_flags`]).
    pub flags: u64,
    /// Access key byte (`key`), as written.
    pub key: u8,
    /// Access-register number byte (`ar`), as written.
    pub ar: u8,
    /// `sida-offset` if given. It overlays `ar` and `key` (bytes 32..35 of the struct),
    /// so the file may not give both; see [`MemopStep::union_bytes`].
    pub sida_offset: Option<u32>,
    /// Bytes to write, or the new value of a cmpxchg; exactly `size` bytes when given.
    /// `None` means `size` zero bytes (kept unmaterialized, as `size` may be huge).
    /// The parser also accepts `data` on read ops; what it means there (for example the
    /// initial contents of the user buffer) is for the executor to define.
    pub data: Option<Vec<u8>>,
    /// The compare value of a cmpxchg; exactly `size` bytes when given. `None` means
    /// `size` zero bytes.
    pub old: Option<Vec<u8>>,
    /// The user buffer (`buf`).
    pub buf: UserBuf,
    /// The old-value buffer (`old-addr`).
    pub old_addr: UserBuf,
}

impl MemopStep {
    /// Bytes 32..35 of `struct kvm_s390_mem_op`: the big-endian `sida_offset` when given,
    /// else `[ar, key, 0, 0]`.
    pub fn union_bytes(&self) -> [u8; 4] {
        match self.sida_offset {
            Some(off) => off.to_be_bytes(),
            None => [self.ar, self.key, 0, 0],
        }
    }

    /// The `sida_offset` the kernel reads (union member B).
    pub fn effective_sida_offset(&self) -> u32 {
        u32::from_be_bytes(self.union_bytes())
    }

    /// The `ar` byte the kernel reads (union member A).
    pub fn effective_ar(&self) -> u8 {
        self.union_bytes()[0]
    }

    /// The `key` byte the kernel reads (union member A).
    pub fn effective_key(&self) -> u8 {
        self.union_bytes()[1]
    }
}

/// A `set` step: only the registers named change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetStep {
    /// New PSW mask.
    pub psw_mask: Option<u64>,
    /// New control-register values.
    pub cr: [Option<CrValue>; 16],
    /// New access-register values.
    pub ar: [Option<u32>; 16],
    /// New prefix register value.
    pub prefix: Option<u32>,
}

/// `KVM_S390_KEYOP` operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyopOp {
    /// `"iske"`, 1.
    Iske,
    /// `"rrbe"`, 2.
    Rrbe,
    /// `"sske"`, 3.
    Sske,
}

impl KeyopOp {
    /// The `operation` field value.
    pub fn number(self) -> u8 {
        match self {
            KeyopOp::Iske => 1,
            KeyopOp::Rrbe => 2,
            KeyopOp::Sske => 3,
        }
    }
}

/// A `keyop` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyopStep {
    /// The operation.
    pub op: KeyopOp,
    /// An address in the frame.
    pub at: u64,
    /// The key byte (default 0).
    pub key: u8,
}

/// A `get-skeys` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GetSkeysStep {
    /// An address in the first frame.
    pub at: u64,
    /// The number of frames, passed through as written.
    pub count: u64,
}

/// Access type of a `translate` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessMode {
    /// `"fetch"`.
    Fetch,
    /// `"store"`.
    Store,
}

/// A `translate` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TranslateStep {
    /// The logical address.
    pub gaddr: u64,
    /// Fetch or store.
    pub access: AccessMode,
    /// Access-register number (default 0).
    pub ar: u8,
    /// Access key (default 0), passed through as written.
    pub key: u8,
}

/// A `tprot` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TprotStep {
    /// The logical address.
    pub gaddr: u64,
    /// The 4-bit access key (0..=15, default 0).
    pub key: u8,
    /// Access-register number of the operand's base register (0..=15, default 0).
    pub ar: u8,
}

/// A `check-key` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CheckKeyStep {
    /// An address in the frame.
    pub at: u64,
    /// The expected key byte.
    pub byte: u8,
}

/// Expected program-interruption record fields; only the given ones are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PgmExpect {
    /// Program-interruption code.
    pub code: Option<u16>,
    /// Translation-exception identification.
    pub teid: Option<u64>,
    /// Exception access id.
    pub exc_access_id: Option<u8>,
    /// Operand access id.
    pub op_access_id: Option<u8>,
}

/// The `expect` block: only the fields given are compared.
///
/// For fields that results may report as `null`, the type is `Option<Option<T>>`: the
/// outer `None` means "not compared", `Some(None)` means "must be null" (JSON `null`;
/// TOML has no null), and `Some(Some(v))` means "must equal `v`". An executor can compare
/// `Some(want)` directly against its own `Option<T>` result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expect {
    /// The ioctl return value.
    pub ret: Option<Option<i64>>,
    /// The errno name (`"EINVAL"`, ...).
    pub errno: Option<Option<String>>,
    /// The program-interruption record; `pgm` and its parts `code`, `teid`,
    /// `exc-access-id`, `op-access-id` (which may also be given at the top of `expect`)
    /// are merged here.
    pub pgm: Option<Option<PgmExpect>>,
    /// The user buffer after a read.
    pub data: Option<Option<Vec<u8>>>,
    /// The old-value buffer after a cmpxchg.
    pub old: Option<Option<Vec<u8>>>,
    /// Whether a program interruption is pending after the step.
    pub pending: Option<bool>,
    /// The absolute address of a `translate`.
    pub abs: Option<Option<u64>>,
    /// The condition code of a `tprot` (0..=3).
    pub cc: Option<Option<u8>>,
    /// The key byte of a `keyop`.
    pub key: Option<Option<u8>>,
    /// The key bytes of a `get-skeys`.
    pub keys: Option<Option<Vec<u8>>>,
    /// Whether a `deliver` delivered an interruption.
    pub delivered: Option<Option<bool>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psw_fields() {
        assert_eq!(PswFields::default().mask(), 0x0000_0001_8000_0000);
        let f = PswFields {
            dat: true,
            key: 9,
            address_space: AddressSpace::AccessRegister,
            amode: AddressingMode::Bits31,
            problem: true,
        };
        assert_eq!(f.mask(), 0x0491_4000_8000_0000);
        let home24 = PswFields {
            address_space: AddressSpace::Home,
            amode: AddressingMode::Bits24,
            ..Default::default()
        };
        assert_eq!(home24.mask(), 0x0000_C000_0000_0000);
        let sec = PswFields {
            address_space: AddressSpace::Secondary,
            ..Default::default()
        };
        assert_eq!(sec.mask(), 0x0000_8001_8000_0000);
    }

    #[test]
    fn asce_bits() {
        let s = SpaceSpec {
            name: "a".into(),
            designation: DesignationType::RegionFirst,
            tables: 0x10000,
            tl: 3,
            private: true,
            real: false,
            g: false,
            s: false,
            x: false,
            maps: vec![],
            edits: vec![],
        };
        assert_eq!(s.asce_low_bits(), 0x10F);
        let seg = SpaceSpec {
            designation: DesignationType::Segment,
            tl: 1,
            private: false,
            real: true,
            ..s
        };
        assert_eq!(seg.asce_low_bits(), 0x21);
    }

    #[test]
    fn skey_byte() {
        assert_eq!(skey::byte(1, true, false, false), 0x18);
        assert_eq!(skey::byte(9, false, true, true), 0x96);
    }

    #[test]
    fn memslots() {
        let vm = VmSpec {
            memslots: vec![
                MemslotSpec {
                    start: 0,
                    size: 0x1000,
                },
                MemslotSpec {
                    start: 0x1000,
                    size: 0x1000,
                },
                MemslotSpec {
                    start: 0x10000,
                    size: 0x1000,
                },
            ],
            facilities: facility::DEFAULT.to_vec(),
            storage_keys: false,
            protected: false,
            keys: vec![],
            data: vec![],
        };
        assert!(vm.range_in_memory(0xff0, 0x1010));
        assert!(!vm.range_in_memory(0xff0, 0x1011));
        assert!(vm.range_in_memory(0x5000, 0));
        assert!(vm.in_memory(0x10fff));
        assert!(!vm.in_memory(0x11000));
        assert!(!vm.range_in_memory(u64::MAX, 2));
        assert!(vm.has_facility(78));
    }

    #[test]
    fn memop_union() {
        let mut m = MemopStep {
            op: MemOpCode::Raw(2),
            ioctl: Ioctl::Vcpu,
            gaddr: 0,
            size: 8,
            flags: 0,
            key: 0x12,
            ar: 0x34,
            sida_offset: None,
            data: None,
            old: None,
            buf: UserBuf::Valid,
            old_addr: UserBuf::Valid,
        };
        assert_eq!(m.op.kind(), Some(MemOpKind::SidaRead));
        assert_eq!(m.effective_sida_offset(), 0x3412_0000);
        m.sida_offset = Some(0x0102_0304);
        assert_eq!(m.effective_ar(), 1);
        assert_eq!(m.effective_key(), 2);
    }
}
