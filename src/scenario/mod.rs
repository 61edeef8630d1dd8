//! Scenario files (scenario-format.md).
//!
//! * [`value`]: the value forms (integers, sizes, bytes, the random generator);
//! * [`model`]: the typed, validated data model ([`Scenario`] and its parts);
//! * [`parse`]: reading `.toml` and `.json` files into the model ([`load`],
//!   [`parse_str`]), with errors that name the file, line, column and field;
//! * [`run`]: building the machine a scenario describes and running its steps into
//!   results ([`run::Machine`], [`run::StepResult`]);
//! * [`report`]: results as the human table and as JSON Lines;
//! * [`explain`]: one translation explained step by step (`s390-gaccess translate`).
#![forbid(unsafe_code)]

pub mod explain;
pub mod model;
pub mod parse;
pub mod report;
pub mod run;
pub mod value;

pub use model::{
    AccessMode, AddressSpace, AddressingMode, CheckKeyStep, CpuSpec, CrValue, DataSpec,
    DesignationType, EditSpec, EntryChange, Expect, FrameSelection, GetSkeysStep, Ioctl,
    KeySetting, KeyopOp, KeyopStep, Level, MapSpec, MemOpCode, MemOpKind, MemopStep, MemslotSpec,
    PageSize, PgmExpect, Profile, PswFields, Scenario, SetStep, SpaceSpec, Step, StepKind,
    TprotStep, TranslateStep, UserBuf, VmSpec,
};
pub use parse::{FieldPath, Format, Location, PathSegment, ScenarioError, load, parse_str};
