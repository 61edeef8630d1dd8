//! Dynamic address translation: table-entry layouts, the DAT walk, access-register
//! translation and a table builder (§5.3, §5.6).
#![forbid(unsafe_code)]

pub mod art;
pub mod builder;
pub mod entries;
pub mod walk;

pub use entries::{
    Asce, DesignationType, PageTableEntry, RegionTableEntry, SegmentTableEntry, TableLevel,
};
pub use walk::{
    DatException, FrameSize, Trace, TraceEntry, Translation, WalkContext, WalkOutcome, walk,
};
