//! Scenario files (scenario-format.md).
//!
//! * [`value`]: the value forms (integers, sizes, bytes, the random generator);
//! * [`model`]: the typed, validated data model ([`Scenario`] and its parts);
//! * [`parse`]: reading `.toml` and `.json` files into the model ([`load`],
//!   [`parse_str`]), with errors that name the file, line, column and field.
//!
//! Executing a scenario is not part of this module.

pub mod model;
pub mod parse;
pub mod value;

pub use model::{
    AccessMode, AddressSpace, AddressingMode, CheckKeyStep, CpuSpec, CrValue, DataSpec,
    DesignationType, EditSpec, EntryChange, Expect, FrameSelection, GetSkeysStep, Ioctl,
    KeySetting, KeyopOp, KeyopStep, Level, MapSpec, MemOpCode, MemOpKind, MemopStep, MemslotSpec,
    PageSize, PgmExpect, Profile, PswFields, Scenario, SetStep, SpaceSpec, Step, StepKind,
    TprotStep, TranslateStep, UserBuf, VmSpec,
};
pub use parse::{FieldPath, Format, Location, PathSegment, ScenarioError, load, parse_str};
