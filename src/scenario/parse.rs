//! Reading scenario files (`.toml`, `.json`) into the [`Scenario`] model.
//!
//! Reading happens in two stages:
//!
//! 1. serde deserializes the text into private "raw" structures that mirror the file
//!    exactly (`deny_unknown_fields` everywhere, kebab-case names). Errors here (syntax,
//!    unknown fields, wrong value types) carry the position the TOML or JSON parser
//!    reports.
//! 2. A conversion pass interprets every value (integer strings, sizes, bytes forms,
//!    names), applies the defaults of scenario-format.md and checks everything that needs
//!    no engine. Its errors name the field path (`step#3.memop.size`; array elements are
//!    numbered from 1, like steps in results) and the position of that field in the file:
//!    for TOML from the spans of `toml`'s document parser, for JSON from a small scanner
//!    over the (already validated) text.
//!
//! Every error's `Display` reads `FILE:LINE:COL: PATH: MESSAGE` (line and column omitted
//! where unknown).
#![forbid(unsafe_code)]

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use super::model::{
    AccessMode, AddressSpace, AddressingMode, CheckKeyStep, CpuSpec, CrValue, DataSpec,
    DesignationType, EditSpec, EntryChange, Expect, FrameSelection, GetSkeysStep, Ioctl,
    KeySetting, KeyopOp, KeyopStep, Level, MapSpec, MemOpCode, MemOpKind, MemopStep, MemslotSpec,
    PageSize, PgmExpect, Profile, PswFields, Scenario, SetStep, SpaceSpec, Step, StepKind,
    TprotStep, TranslateStep, UserBuf, VmSpec, facility, memop_flags, skey,
};
use super::value::{self, BytesForm};
use raw::{Scalar, ScalarOr};

/// The two file syntaxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// TOML (`.toml`), for people.
    Toml,
    /// JSON (`.json`), for programs.
    Json,
}

impl Format {
    /// The format for a file name's extension (`.toml` or `.json`, case-insensitive).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?;
        if ext.eq_ignore_ascii_case("toml") {
            Some(Format::Toml)
        } else if ext.eq_ignore_ascii_case("json") {
            Some(Format::Json)
        } else {
            None
        }
    }
}

/// A place in a scenario file. Lines and columns count from 1; columns count characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file name as given to [`parse_str`] or [`load`].
    pub file: String,
    /// The line, where known.
    pub line: Option<usize>,
    /// The column, where known.
    pub column: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// A table key / object member.
    Key(String),
    /// An array index, from 0 (displayed from 1).
    Index(usize),
}

/// The path of a field in the file, e.g. `step#3.memop.size`. Array elements display as
/// `#N` counting from 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FieldPath(pub Vec<PathSegment>);

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                PathSegment::Key(k) if i == 0 => f.write_str(k)?,
                PathSegment::Key(k) => write!(f, ".{k}")?,
                PathSegment::Index(n) => write!(f, "#{}", n.saturating_add(1))?,
            }
        }
        Ok(())
    }
}

/// Why a scenario file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("{file}: cannot read the file: {source}")]
    Io {
        /// The file name.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file name does not end in `.toml` or `.json`.
    #[error("{file}: unknown scenario file type: the name must end in .toml or .json")]
    UnknownFormat {
        /// The file name.
        file: String,
    },
    /// The TOML or JSON parser rejected the text: a syntax error, an unknown field, or a
    /// value of the wrong type.
    #[error("{location}: {message}")]
    Syntax {
        /// Where.
        location: Location,
        /// What, as the parser says it.
        message: String,
    },
    /// The file is well-formed but a value is invalid or the parts are inconsistent.
    #[error("{location}: {}{message}", path_prefix(path))]
    Invalid {
        /// Where the offending field (or the table missing it) starts.
        location: Location,
        /// The field.
        path: FieldPath,
        /// What is wrong and how to fix it.
        message: String,
    },
}

fn path_prefix(path: &FieldPath) -> String {
    if path.0.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

impl ScenarioError {
    /// The file the error is about.
    pub fn file(&self) -> &str {
        match self {
            ScenarioError::Io { file, .. } | ScenarioError::UnknownFormat { file } => file,
            ScenarioError::Syntax { location, .. } | ScenarioError::Invalid { location, .. } => {
                &location.file
            }
        }
    }

    /// The position, for syntax and validation errors.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ScenarioError::Syntax { location, .. } | ScenarioError::Invalid { location, .. } => {
                Some(location)
            }
            _ => None,
        }
    }

    /// The line, where known.
    pub fn line(&self) -> Option<usize> {
        self.location().and_then(|l| l.line)
    }

    /// The column, where known.
    pub fn column(&self) -> Option<usize> {
        self.location().and_then(|l| l.column)
    }
}

/// Reads and validates the scenario file at `path`; the format follows the extension.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let (text, format, file) = read(path)?;
    parse_str(&text, format, &file)
}

/// Reads the scenario file at `path` without parsing it: its text, its format (from the
/// extension) and its name for messages.
pub fn read(path: &Path) -> Result<(String, Format, String), ScenarioError> {
    let file = path.display().to_string();
    let Some(format) = Format::from_path(path) else {
        return Err(ScenarioError::UnknownFormat { file });
    };
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
        file: file.clone(),
        source,
    })?;
    Ok((text, format, file))
}

/// Parses and validates scenario text. `file_name` is used in error messages and as the
/// default scenario name (its last path component).
pub fn parse_str(text: &str, format: Format, file_name: &str) -> Result<Scenario, ScenarioError> {
    let cx = Cx::new(text, format, file_name);
    let raw: raw::FileRaw = match format {
        Format::Toml => toml::from_str(text).map_err(|e| cx.toml_error(&e))?,
        Format::Json => serde_json::from_str(text).map_err(|e| cx.json_error(&e))?,
    };
    cx.scenario(&raw)
}

/// The location of the field at `path` in scenario text (or of its nearest ancestor that
/// is in the file), for errors found after parsing, such as machine set-up errors.
/// `text`, `format` and `file_name` are what [`parse_str`] was given.
pub fn locate(text: &str, format: Format, file_name: &str, path: &FieldPath) -> Location {
    Cx::new(text, format, file_name).locate(path)
}

// ---------------------------------------------------------------------------------------
// Raw structures: the file as written.

mod raw {
    use serde::Deserialize;
    use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::fmt;
    use std::marker::PhantomData;

    /// A number or a string, not yet interpreted (integer strings, sizes, names and
    /// `space:NAME` are all strings).
    #[derive(Debug, Clone)]
    pub(super) enum Scalar {
        Int(i128),
        Str(String),
    }

    struct ScalarVisitor;

    impl<'de> Visitor<'de> for ScalarVisitor {
        type Value = Scalar;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer or a string")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
            Ok(Scalar::Int(v.into()))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
            Ok(Scalar::Int(v.into()))
        }

        fn visit_i128<E: de::Error>(self, v: i128) -> Result<Scalar, E> {
            Ok(Scalar::Int(v))
        }

        fn visit_u128<E: de::Error>(self, v: u128) -> Result<Scalar, E> {
            i128::try_from(v)
                .map(Scalar::Int)
                .map_err(|_| E::custom("integer too large: values must fit in 64 bits"))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
            Ok(Scalar::Str(v.to_owned()))
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
            Ok(Scalar::Str(v))
        }
    }

    impl<'de> Deserialize<'de> for Scalar {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(ScalarVisitor)
        }
    }

    /// A scalar, or a table/array form `T` (memory, flags, psw, bytes).
    #[derive(Debug, Clone)]
    pub(super) enum ScalarOr<T> {
        Scalar(Scalar),
        Other(T),
    }

    struct ScalarOrVisitor<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for ScalarOrVisitor<T> {
        type Value = ScalarOr<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer, a string, a table or an array")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            ScalarVisitor.visit_i64(v).map(ScalarOr::Scalar)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            ScalarVisitor.visit_u64(v).map(ScalarOr::Scalar)
        }

        fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
            ScalarVisitor.visit_i128(v).map(ScalarOr::Scalar)
        }

        fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
            ScalarVisitor.visit_u128(v).map(ScalarOr::Scalar)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            ScalarVisitor.visit_str(v).map(ScalarOr::Scalar)
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            ScalarVisitor.visit_string(v).map(ScalarOr::Scalar)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map)).map(ScalarOr::Other)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            T::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(ScalarOr::Other)
        }
    }

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for ScalarOr<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(ScalarOrVisitor(PhantomData))
        }
    }

    /// A register table (`cr`, `ar`): the entries in file order, duplicates kept so that
    /// they can be reported.
    #[derive(Debug, Clone, Default)]
    pub(super) struct RegTable(pub Vec<(String, Scalar)>);

    struct RegTableVisitor;

    impl<'de> Visitor<'de> for RegTableVisitor {
        type Value = RegTable;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table from register number (\"0\" to \"15\") to value")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RegTable, A::Error> {
            let mut entries = Vec::new();
            while let Some((k, v)) = map.next_entry::<String, Scalar>()? {
                entries.push((k, v));
            }
            Ok(RegTable(entries))
        }
    }

    impl<'de> Deserialize<'de> for RegTable {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(RegTableVisitor)
        }
    }

    /// `Option<Option<T>>` for expect fields: absent → `None`, JSON `null` →
    /// `Some(None)`.
    fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }

    /// Raw structures are read from tables (maps) only. serde's derived impls would also
    /// accept a sequence of the fields in declaration order; that is not part of the
    /// format. Each structure derives its field-by-field reader with `remote = "Self"`
    /// (an inherent `deserialize`), and this macro wraps it in a map-only entry point.
    trait FromTable<'de>: Sized {
        fn from_table<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
    }

    struct TableVisitor<T>(PhantomData<T>);

    impl<'de, T: FromTable<'de>> Visitor<'de> for TableVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::from_table(de::value::MapAccessDeserializer::new(map))
        }
    }

    macro_rules! tables_only {
        ($($t:ident),* $(,)?) => {$(
            impl<'de> FromTable<'de> for $t {
                fn from_table<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    $t::deserialize(d)
                }
            }

            impl<'de> Deserialize<'de> for $t {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    d.deserialize_map(TableVisitor::<$t>(PhantomData))
                }
            }
        )*};
    }

    tables_only!(
        FileRaw,
        VmRaw,
        MemslotRaw,
        KeyRaw,
        AtBytesRaw,
        BytesTableRaw,
        SpaceRaw,
        MapRaw,
        EditRaw,
        CpuRaw,
        PswTableRaw,
        StepRaw,
        MemopRaw,
        SetRaw,
        KeyopRaw,
        GetSkeysRaw,
        TranslateRaw,
        TprotRaw,
        CheckKeyRaw,
        PgmRaw,
        ExpectRaw,
    );

    pub(super) type BytesRaw = ScalarOr<BytesTableRaw>;

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct FileRaw {
        pub name: Option<String>,
        pub profile: Option<String>,
        pub vm: Option<VmRaw>,
        pub space: Option<Vec<SpaceRaw>>,
        pub cpu: Option<CpuRaw>,
        pub step: Option<Vec<StepRaw>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct VmRaw {
        pub memory: Option<ScalarOr<Vec<MemslotRaw>>>,
        pub facilities: Option<Vec<Scalar>>,
        pub storage_keys: Option<bool>,
        pub protected: Option<bool>,
        pub key: Option<Vec<KeyRaw>>,
        pub data: Option<Vec<AtBytesRaw>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct MemslotRaw {
        pub start: Option<Scalar>,
        pub size: Option<Scalar>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct KeyRaw {
        pub at: Option<Scalar>,
        pub range: Option<Vec<Scalar>>,
        pub byte: Option<Scalar>,
        pub acc: Option<Scalar>,
        pub f: Option<bool>,
        pub r: Option<bool>,
        pub c: Option<bool>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct AtBytesRaw {
        pub at: Option<Scalar>,
        pub hex: Option<String>,
        pub fill: Option<Scalar>,
        pub len: Option<Scalar>,
        pub u64: Option<Vec<Scalar>>,
        pub random: Option<Scalar>,
    }

    #[derive(Debug, Clone, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct BytesTableRaw {
        pub hex: Option<String>,
        pub fill: Option<Scalar>,
        pub len: Option<Scalar>,
        pub u64: Option<Vec<Scalar>>,
        pub random: Option<Scalar>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct SpaceRaw {
        pub name: Option<String>,
        #[serde(rename = "type")]
        pub type_: Option<String>,
        pub tables: Option<Scalar>,
        pub tl: Option<Scalar>,
        pub private: Option<bool>,
        pub real: Option<bool>,
        pub g: Option<bool>,
        pub s: Option<bool>,
        pub x: Option<bool>,
        pub map: Option<Vec<MapRaw>>,
        pub edit: Option<Vec<EditRaw>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct MapRaw {
        pub virt: Option<Scalar>,
        pub abs: Option<Scalar>,
        pub size: Option<Scalar>,
        pub page: Option<String>,
        pub protect: Option<bool>,
        pub iep: Option<bool>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct EditRaw {
        pub virt: Option<Scalar>,
        pub level: Option<String>,
        pub set: Option<Scalar>,
        pub clear: Option<Scalar>,
        pub value: Option<Scalar>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct CpuRaw {
        pub psw: Option<ScalarOr<PswTableRaw>>,
        pub cr: Option<RegTable>,
        pub ar: Option<RegTable>,
        pub prefix: Option<Scalar>,
        pub protected: Option<bool>,
        pub sida: Option<BytesRaw>,
        pub sida_size: Option<Scalar>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct PswTableRaw {
        pub dat: Option<bool>,
        pub key: Option<Scalar>,
        #[serde(rename = "as")]
        pub as_: Option<String>,
        pub amode: Option<Scalar>,
        pub problem: Option<bool>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct StepRaw {
        pub memop: Option<MemopRaw>,
        pub write: Option<AtBytesRaw>,
        pub set: Option<SetRaw>,
        pub set_key: Option<KeyRaw>,
        pub keyop: Option<KeyopRaw>,
        pub get_skeys: Option<GetSkeysRaw>,
        pub deliver: Option<bool>,
        pub translate: Option<TranslateRaw>,
        pub tprot: Option<TprotRaw>,
        pub check: Option<AtBytesRaw>,
        pub check_key: Option<CheckKeyRaw>,
        pub expect: Option<ExpectRaw>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct MemopRaw {
        pub op: Option<Scalar>,
        pub ioctl: Option<String>,
        pub gaddr: Option<Scalar>,
        pub size: Option<Scalar>,
        pub flags: Option<ScalarOr<Vec<String>>>,
        pub key: Option<Scalar>,
        pub ar: Option<Scalar>,
        pub sida_offset: Option<Scalar>,
        pub data: Option<BytesRaw>,
        pub old: Option<BytesRaw>,
        pub buf: Option<String>,
        pub old_addr: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct SetRaw {
        pub psw: Option<ScalarOr<PswTableRaw>>,
        pub cr: Option<RegTable>,
        pub ar: Option<RegTable>,
        pub prefix: Option<Scalar>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct KeyopRaw {
        pub op: Option<String>,
        pub at: Option<Scalar>,
        pub key: Option<Scalar>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct GetSkeysRaw {
        pub at: Option<Scalar>,
        pub count: Option<Scalar>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct TranslateRaw {
        pub gaddr: Option<Scalar>,
        pub access: Option<String>,
        pub ar: Option<Scalar>,
        pub key: Option<Scalar>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct TprotRaw {
        pub gaddr: Option<Scalar>,
        pub key: Option<Scalar>,
        pub ar: Option<Scalar>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct CheckKeyRaw {
        pub at: Option<Scalar>,
        pub byte: Option<Scalar>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct PgmRaw {
        pub code: Option<Scalar>,
        pub teid: Option<Scalar>,
        pub exc_access_id: Option<Scalar>,
        pub op_access_id: Option<Scalar>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct ExpectRaw {
        #[serde(default, deserialize_with = "nullable")]
        pub ret: Option<Option<Scalar>>,
        #[serde(default, deserialize_with = "nullable")]
        pub errno: Option<Option<String>>,
        #[serde(default, deserialize_with = "nullable")]
        pub pgm: Option<Option<PgmRaw>>,
        pub code: Option<Scalar>,
        pub teid: Option<Scalar>,
        pub exc_access_id: Option<Scalar>,
        pub op_access_id: Option<Scalar>,
        #[serde(default, deserialize_with = "nullable")]
        pub data: Option<Option<BytesRaw>>,
        #[serde(default, deserialize_with = "nullable")]
        pub old: Option<Option<BytesRaw>>,
        pub pending: Option<bool>,
        #[serde(default, deserialize_with = "nullable")]
        pub abs: Option<Option<Scalar>>,
        #[serde(default, deserialize_with = "nullable")]
        pub cc: Option<Option<Scalar>>,
        #[serde(default, deserialize_with = "nullable")]
        pub key: Option<Option<Scalar>>,
        #[serde(default, deserialize_with = "nullable")]
        pub keys: Option<Option<BytesRaw>>,
        #[serde(default, deserialize_with = "nullable")]
        pub delivered: Option<Option<bool>>,
    }
}

// ---------------------------------------------------------------------------------------
// Field paths during conversion (borrowed, allocation-free until an error is made).

#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

#[derive(Clone, Copy)]
struct P<'a> {
    parent: Option<&'a P<'a>>,
    seg: Seg<'a>,
}

const ROOT: P<'static> = P {
    parent: None,
    seg: Seg::Root,
};

impl<'a> P<'a> {
    fn key<'b>(&'b self, k: &'b str) -> P<'b> {
        P {
            parent: Some(self),
            seg: Seg::Key(k),
        }
    }

    fn idx<'b>(&'b self, i: usize) -> P<'b> {
        P {
            parent: Some(self),
            seg: Seg::Index(i),
        }
    }

    fn to_path(self) -> FieldPath {
        let mut segs = Vec::new();
        let mut cur = Some(&self);
        while let Some(p) = cur {
            match p.seg {
                Seg::Root => {}
                Seg::Key(k) => segs.push(PathSegment::Key(k.to_owned())),
                Seg::Index(i) => segs.push(PathSegment::Index(i)),
            }
            cur = p.parent;
        }
        segs.reverse();
        FieldPath(segs)
    }
}

// ---------------------------------------------------------------------------------------
// Positions.

/// Byte offsets of line starts, for offset → line:column.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i.saturating_add(1)),
        );
        Self { starts }
    }

    /// 1-based line and (character) column of a byte offset.
    fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|s| *s <= offset).max(1);
        let start = self
            .starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let col = match text.get(start..offset) {
            Some(s) => s.chars().count(),
            None => offset.saturating_sub(start),
        };
        (line, col.saturating_add(1))
    }
}

/// A minimal scanner over JSON text that serde_json has already accepted, to find the
/// byte offset of the value at a path.
struct JsonScan<'t> {
    s: &'t str,
    i: usize,
}

impl<'t> JsonScan<'t> {
    fn new(s: &'t str) -> Self {
        Self { s, i: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn bump(&mut self) {
        self.i = self.i.saturating_add(1);
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.bump();
        }
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.ws();
        if self.peek()? == c {
            self.bump();
            Some(())
        } else {
            None
        }
    }

    fn skip_string(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.bump();
        loop {
            match self.peek()? {
                b'"' => {
                    self.bump();
                    return Some(());
                }
                b'\\' => {
                    self.bump();
                    self.bump();
                }
                _ => self.bump(),
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        if self.peek()? != b'"' {
            return None;
        }
        self.bump();
        let mut out = String::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.bump();
                    return Some(out);
                }
                b'\\' => {
                    self.bump();
                    let e = self.peek()?;
                    self.bump();
                    match e {
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'u' => {
                            let end = self.i.checked_add(4)?;
                            let hex = self.s.get(self.i..end)?;
                            let cp = u32::from_str_radix(hex, 16).ok()?;
                            self.i = end;
                            out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                        }
                        other => out.push(char::from(other)),
                    }
                }
                _ => {
                    let ch = self.s.get(self.i..)?.chars().next()?;
                    out.push(ch);
                    self.i = self.i.saturating_add(ch.len_utf8());
                }
            }
        }
    }

    fn skip_value(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.skip_string()?;
                            continue;
                        }
                        b'{' | b'[' => depth = depth.saturating_add(1),
                        b'}' | b']' => {
                            depth = depth.checked_sub(1)?;
                            if depth == 0 {
                                self.bump();
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.bump();
                }
            }
            _ => {
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.bump();
                }
                Some(())
            }
        }
    }

    /// Offset of the value at `path`, scanning from the current position.
    fn find(&mut self, path: &[PathSegment]) -> Option<usize> {
        self.ws();
        let Some((first, rest)) = path.split_first() else {
            return Some(self.i);
        };
        match first {
            PathSegment::Key(k) => {
                self.expect(b'{')?;
                loop {
                    self.ws();
                    if self.peek()? == b'}' {
                        return None;
                    }
                    let key = self.string()?;
                    self.expect(b':')?;
                    if key == *k {
                        return self.find(rest);
                    }
                    self.skip_value()?;
                    self.expect(b',')?;
                }
            }
            PathSegment::Index(n) => {
                self.expect(b'[')?;
                let mut idx = 0usize;
                loop {
                    self.ws();
                    if self.peek()? == b']' {
                        return None;
                    }
                    if idx == *n {
                        return self.find(rest);
                    }
                    self.skip_value()?;
                    self.expect(b',')?;
                    idx = idx.saturating_add(1);
                }
            }
        }
    }

    /// Offsets of the elements of the array at `path`.
    fn element_offsets(mut self, path: &[PathSegment]) -> Vec<usize> {
        let mut out = Vec::new();
        if self.find(path).is_none() || self.expect(b'[').is_none() {
            return out;
        }
        loop {
            self.ws();
            match self.peek() {
                None | Some(b']') => return out,
                Some(_) => {}
            }
            out.push(self.i);
            if self.skip_value().is_none() || self.expect(b',').is_none() {
                return out;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Conversion.

type R<T> = Result<T, ScenarioError>;

struct Cx<'t> {
    file: &'t str,
    text: &'t str,
    format: Format,
    lines: LineIndex,
    toml_doc: OnceCell<Option<toml::Spanned<toml::de::DeTable<'t>>>>,
}

const MEMOP_KINDS: [(&str, MemOpKind); 7] = [
    ("logical-read", MemOpKind::LogicalRead),
    ("logical-write", MemOpKind::LogicalWrite),
    ("sida-read", MemOpKind::SidaRead),
    ("sida-write", MemOpKind::SidaWrite),
    ("absolute-read", MemOpKind::AbsoluteRead),
    ("absolute-write", MemOpKind::AbsoluteWrite),
    ("absolute-cmpxchg", MemOpKind::AbsoluteCmpxchg),
];
const PROFILES: [(&str, Profile); 2] = [
    ("linux-7.0", Profile::Linux70),
    ("linux-6.3", Profile::Linux63),
];
const DESIGNATIONS: [(&str, DesignationType); 4] = [
    ("region-first", DesignationType::RegionFirst),
    ("region-second", DesignationType::RegionSecond),
    ("region-third", DesignationType::RegionThird),
    ("segment", DesignationType::Segment),
];
const LEVELS: [(&str, Level); 5] = [
    ("region-first", Level::RegionFirst),
    ("region-second", Level::RegionSecond),
    ("region-third", Level::RegionThird),
    ("segment", Level::Segment),
    ("page", Level::Page),
];
const PAGES: [(&str, PageSize); 3] = [
    ("4K", PageSize::K4),
    ("1M", PageSize::M1),
    ("2G", PageSize::G2),
];
const ADDRESS_SPACES: [(&str, AddressSpace); 4] = [
    ("primary", AddressSpace::Primary),
    ("secondary", AddressSpace::Secondary),
    ("home", AddressSpace::Home),
    ("ar", AddressSpace::AccessRegister),
];
const IOCTLS: [(&str, Ioctl); 2] = [("vm", Ioctl::Vm), ("vcpu", Ioctl::Vcpu)];
const BUFS: [(&str, UserBuf); 2] = [("valid", UserBuf::Valid), ("null", UserBuf::Null)];
const KEYOPS: [(&str, KeyopOp); 3] = [
    ("iske", KeyopOp::Iske),
    ("rrbe", KeyopOp::Rrbe),
    ("sske", KeyopOp::Sske),
];
const ACCESS_MODES: [(&str, AccessMode); 2] =
    [("fetch", AccessMode::Fetch), ("store", AccessMode::Store)];
const STEP_KINDS: &str = "`memop`, `write`, `set`, `set-key`, `keyop`, `get-skeys`, `deliver`, \
                          `translate`, `tprot`, `check` or `check-key`";

/// Borrowed view of the bytes fields shared by bytes tables and `{ at, ...bytes }`.
struct BytesParts<'x> {
    hex: Option<&'x String>,
    fill: Option<&'x Scalar>,
    len: Option<&'x Scalar>,
    u64: Option<&'x Vec<Scalar>>,
    random: Option<&'x Scalar>,
}

/// `From` for each raw structure that carries the bytes fields.
macro_rules! bytes_parts_from {
    ($($t:ty),* $(,)?) => {$(
        impl<'x> From<&'x $t> for BytesParts<'x> {
            fn from(b: &'x $t) -> Self {
                Self {
                    hex: b.hex.as_ref(),
                    fill: b.fill.as_ref(),
                    len: b.len.as_ref(),
                    u64: b.u64.as_ref(),
                    random: b.random.as_ref(),
                }
            }
        }
    )*};
}

bytes_parts_from!(raw::BytesTableRaw, raw::AtBytesRaw);

/// Field names as "`a` and `b`", for messages about fields that exclude each other.
fn backticked_and(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(" and ")
}

fn quoted_list<T>(table: &[(&str, T)]) -> String {
    let names: Vec<String> = table.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    names.join(", ")
}

impl<'t> Cx<'t> {
    fn new(text: &'t str, format: Format, file: &'t str) -> Self {
        Self {
            file,
            text,
            format,
            lines: LineIndex::new(text),
            toml_doc: OnceCell::new(),
        }
    }

    // ----- locations -----

    fn location_at(&self, offset: Option<usize>) -> Location {
        let (line, column) = match offset {
            Some(off) => {
                let (l, c) = self.lines.line_col(self.text, off);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        Location {
            file: self.file.to_owned(),
            line,
            column,
        }
    }

    fn toml_doc(&self) -> Option<&toml::Spanned<toml::de::DeTable<'t>>> {
        self.toml_doc
            .get_or_init(|| toml::de::DeTable::parse(self.text).ok())
            .as_ref()
    }

    fn toml_value(&self, path: &[PathSegment]) -> Option<&toml::Spanned<toml::de::DeValue<'t>>> {
        let doc = self.toml_doc()?;
        let (first, rest) = path.split_first()?;
        let PathSegment::Key(k) = first else {
            return None;
        };
        let mut cur = doc.get_ref().get(k.as_str())?;
        for seg in rest {
            cur = match seg {
                PathSegment::Key(k) => cur.get_ref().get(k.as_str())?,
                PathSegment::Index(i) => cur.get_ref().get(*i)?,
            };
        }
        Some(cur)
    }

    /// Byte offset of the value at exactly `path`, if it is in the file.
    fn offset_of(&self, path: &[PathSegment]) -> Option<usize> {
        if path.is_empty() {
            return None;
        }
        match self.format {
            Format::Toml => self.toml_value(path).map(|v| v.span().start),
            Format::Json => JsonScan::new(self.text).find(path),
        }
    }

    /// The location of `path`, or of its nearest ancestor present in the file.
    fn locate(&self, path: &FieldPath) -> Location {
        let segs = &path.0;
        let offset = (1..=segs.len())
            .rev()
            .find_map(|n| segs.get(..n).and_then(|p| self.offset_of(p)));
        self.location_at(offset)
    }

    /// 1-based lines of the elements of the top-level array `key`.
    fn element_lines(&self, key: &str) -> Vec<usize> {
        let path = [PathSegment::Key(key.to_owned())];
        let offsets: Vec<usize> = match self.format {
            Format::Toml => self
                .toml_value(&path)
                .and_then(|v| v.get_ref().as_array())
                .map(|a| a.iter().map(|e| e.span().start).collect())
                .unwrap_or_default(),
            Format::Json => JsonScan::new(self.text).element_offsets(&path),
        };
        offsets
            .into_iter()
            .map(|o| self.lines.line_col(self.text, o).0)
            .collect()
    }

    // ----- errors -----

    fn invalid(&self, p: &P<'_>, message: impl Into<String>) -> ScenarioError {
        let path = p.to_path();
        ScenarioError::Invalid {
            location: self.locate(&path),
            path,
            message: message.into(),
        }
    }

    fn toml_error(&self, e: &toml::de::Error) -> ScenarioError {
        let message = e
            .message()
            .trim()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        ScenarioError::Syntax {
            location: self.location_at(e.span().map(|s| s.start)),
            message,
        }
    }

    fn json_error(&self, e: &serde_json::Error) -> ScenarioError {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        let (line, column) = if e.line() == 0 {
            (None, None)
        } else {
            (Some(e.line()), Some(e.column().max(1)))
        };
        ScenarioError::Syntax {
            location: Location {
                file: self.file.to_owned(),
                line,
                column,
            },
            message,
        }
    }

    // ----- value helpers -----

    fn req<'x, T>(&self, v: &'x Option<T>, p: &P<'_>, field: &str) -> R<&'x T> {
        v.as_ref()
            .ok_or_else(|| self.invalid(p, format!("missing field `{field}`")))
    }

    fn int(&self, v: &Scalar, p: &P<'_>, suffix: bool) -> R<i128> {
        match v {
            Scalar::Int(n) => {
                if *n > i128::from(i64::MAX) {
                    Err(self.invalid(
                        p,
                        format!(
                            "{n} is above i64::MAX; write integers this large as strings, \
                             e.g. \"{n:#x}\""
                        ),
                    ))
                } else {
                    Ok(*n)
                }
            }
            Scalar::Str(s) => {
                let parsed = if suffix {
                    value::parse_size(s)
                } else {
                    value::parse_integer(s)
                };
                parsed.map_err(|e| self.invalid(p, e.to_string()))
            }
        }
    }

    fn uint(&self, v: &Scalar, p: &P<'_>, max: u64, what: &str, suffix: bool) -> R<u64> {
        let n = self.int(v, p, suffix)?;
        value::to_unsigned(n, max, what).map_err(|e| self.invalid(p, e.to_string()))
    }

    /// A 64-bit value without size suffix (masks, register values, seeds).
    fn u64(&self, v: &Scalar, p: &P<'_>) -> R<u64> {
        self.uint(v, p, u64::MAX, "a 64-bit value", false)
    }

    /// An address or size: 64 bits, binary suffixes allowed.
    fn addr(&self, v: &Scalar, p: &P<'_>) -> R<u64> {
        self.uint(v, p, u64::MAX, "a 64-bit address or size", true)
    }

    fn u32(&self, v: &Scalar, p: &P<'_>, suffix: bool) -> R<u32> {
        let n = self.uint(v, p, u64::from(u32::MAX), "a 32-bit value", suffix)?;
        u32::try_from(n).map_err(|_| self.invalid(p, "value out of range"))
    }

    fn u8_max(&self, v: &Scalar, p: &P<'_>, max: u8, what: &str) -> R<u8> {
        let n = self.uint(v, p, u64::from(max), what, false)?;
        u8::try_from(n).map_err(|_| self.invalid(p, "value out of range"))
    }

    fn byte(&self, v: &Scalar, p: &P<'_>) -> R<u8> {
        self.u8_max(v, p, u8::MAX, "a byte")
    }

    fn opt<T>(&self, v: &Option<Scalar>, f: impl FnOnce(&Scalar) -> R<T>) -> R<Option<T>> {
        v.as_ref().map(f).transpose()
    }

    fn name<T: Copy>(&self, s: &str, p: &P<'_>, table: &[(&str, T)], what: &str) -> R<T> {
        table
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                self.invalid(
                    p,
                    format!(
                        "unknown {what} \"{s}\"; expected one of {}",
                        quoted_list(table)
                    ),
                )
            })
    }

    fn opt_name<T: Copy>(
        &self,
        s: &Option<String>,
        p: &P<'_>,
        table: &[(&str, T)],
        what: &str,
    ) -> R<Option<T>> {
        s.as_deref()
            .map(|s| self.name(s, p, table, what))
            .transpose()
    }

    fn bytes_parts(&self, b: BytesParts<'_>, p: &P<'_>) -> R<Vec<u8>> {
        let given: Vec<&str> = [
            ("hex", b.hex.is_some()),
            ("fill", b.fill.is_some()),
            ("u64", b.u64.is_some()),
            ("random", b.random.is_some()),
        ]
        .iter()
        .filter(|(_, g)| *g)
        .map(|(n, _)| *n)
        .collect();
        if given.len() > 1 {
            return Err(self.invalid(
                p,
                format!(
                    "give exactly one bytes form, not {}",
                    backticked_and(&given)
                ),
            ));
        }
        let needs_len = b.fill.is_some() || b.random.is_some();
        let len = match (b.len, needs_len) {
            (Some(l), true) => Some(self.addr(l, &p.key("len"))?),
            (None, true) => {
                let form = if b.fill.is_some() { "fill" } else { "random" };
                return Err(
                    self.invalid(p, format!("missing field `len` (required with `{form}`)"))
                );
            }
            (Some(_), false) => {
                return Err(
                    self.invalid(&p.key("len"), "`len` applies only to `fill` and `random`")
                );
            }
            (None, false) => None,
        };
        let form = if let Some(h) = b.hex {
            BytesForm::Hex(
                value::decode_hex(h).map_err(|e| self.invalid(&p.key("hex"), e.to_string()))?,
            )
        } else if let Some(f) = b.fill {
            BytesForm::Fill {
                byte: self.byte(f, &p.key("fill"))?,
                len: len.unwrap_or(0),
            }
        } else if let Some(words) = b.u64 {
            let pw = p.key("u64");
            let mut out = Vec::with_capacity(words.len());
            for (i, w) in words.iter().enumerate() {
                out.push(self.u64(w, &pw.idx(i))?);
            }
            BytesForm::U64(out)
        } else if let Some(seed) = b.random {
            BytesForm::Random {
                seed: self.u64(seed, &p.key("random"))?,
                len: len.unwrap_or(0),
            }
        } else {
            return Err(self.invalid(
                p,
                "missing bytes: give one of `hex = \"...\"`, `fill` with `len`, \
                 `u64 = [...]` or `random` with `len`",
            ));
        };
        let at_len = if b.len.is_some() { p.key("len") } else { *p };
        form.to_bytes()
            .map_err(|e| self.invalid(&at_len, e.to_string()))
    }

    fn bytes(&self, b: &raw::BytesRaw, p: &P<'_>) -> R<Vec<u8>> {
        match b {
            ScalarOr::Other(t) => self.bytes_parts(t.into(), p),
            // Extension: a plain string is hex, as results print bytes.
            ScalarOr::Scalar(Scalar::Str(s)) => {
                value::decode_hex(s).map_err(|e| self.invalid(p, e.to_string()))
            }
            ScalarOr::Scalar(Scalar::Int(_)) => Err(self.invalid(
                p,
                "bytes are written as a table: { hex = \"...\" }, { fill = BYTE, len = N }, \
                 { u64 = [...] } or { random = SEED, len = N } (or a hex string)",
            )),
        }
    }

    fn data_spec(&self, d: &raw::AtBytesRaw, p: &P<'_>) -> R<DataSpec> {
        let at = self.addr(self.req(&d.at, p, "at")?, &p.key("at"))?;
        let bytes = self.bytes_parts(d.into(), p)?;
        let end = u64::try_from(bytes.len())
            .ok()
            .and_then(|n| u128::from(at).checked_add(u128::from(n)));
        if end.is_none_or(|e| e > u128::from(u64::MAX) + 1) {
            return Err(self.invalid(
                p,
                format!(
                    "{} bytes at {at:#x} run past the end of the 64-bit address space",
                    bytes.len()
                ),
            ));
        }
        Ok(DataSpec { at, bytes })
    }

    // ----- top level -----

    fn scenario(&self, raw: &raw::FileRaw) -> R<Scenario> {
        let name = match &raw.name {
            Some(n) => n.clone(),
            None => Path::new(self.file)
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or(self.file)
                .to_owned(),
        };
        let profile = self
            .opt_name(&raw.profile, &ROOT.key("profile"), &PROFILES, "profile")?
            .unwrap_or_default();
        let vm_raw = raw.vm.as_ref().ok_or_else(|| {
            self.invalid(
                &ROOT,
                "missing field `vm`: every scenario needs a [vm] table with at least `memory`",
            )
        })?;
        let vm = self.vm(vm_raw, &ROOT.key("vm"))?;

        let mut spaces: Vec<SpaceSpec> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        if let Some(list) = &raw.space {
            let ps = ROOT.key("space");
            for (i, s) in list.iter().enumerate() {
                let p = ps.idx(i);
                let space = self.space(s, &p)?;
                if let Some(first) = seen.get(&space.name) {
                    return Err(self.invalid(
                        &p.key("name"),
                        format!(
                            "duplicate space name \"{}\" (space #{} has it already); names must be unique",
                            space.name,
                            first.saturating_add(1)
                        ),
                    ));
                }
                seen.insert(space.name.clone(), i);
                spaces.push(space);
            }
        }

        let default_cpu = raw::CpuRaw::default();
        let cpu = self.cpu(
            raw.cpu.as_ref().unwrap_or(&default_cpu),
            &ROOT.key("cpu"),
            &spaces,
        )?;

        let mut steps = Vec::new();
        if let Some(list) = &raw.step {
            let lines = self.element_lines("step");
            let ps = ROOT.key("step");
            for (i, s) in list.iter().enumerate() {
                let mut step = self.step(s, &ps.idx(i), &spaces)?;
                step.line = lines.get(i).copied();
                steps.push(step);
            }
        }

        Ok(Scenario {
            name,
            profile,
            vm,
            spaces,
            cpu,
            steps,
        })
    }

    // ----- [vm] -----

    fn vm(&self, raw: &raw::VmRaw, p: &P<'_>) -> R<VmSpec> {
        let pm = p.key("memory");
        let memslots = match self.req(&raw.memory, p, "memory")? {
            ScalarOr::Scalar(size) => {
                let size = self.addr(size, &pm)?;
                let slot = MemslotSpec { start: 0, size };
                self.check_memslot(&slot, &pm, &pm)?;
                vec![slot]
            }
            ScalarOr::Other(list) => {
                let mut slots = Vec::with_capacity(list.len());
                for (i, m) in list.iter().enumerate() {
                    let pi = pm.idx(i);
                    let start = self.addr(self.req(&m.start, &pi, "start")?, &pi.key("start"))?;
                    let size = self.addr(self.req(&m.size, &pi, "size")?, &pi.key("size"))?;
                    let slot = MemslotSpec { start, size };
                    self.check_memslot(&slot, &pi.key("start"), &pi.key("size"))?;
                    slots.push(slot);
                }
                let mut order: Vec<usize> = (0..slots.len()).collect();
                order.sort_by_key(|i| slots.get(*i).map(|s| s.start));
                for w in order.windows(2) {
                    let (Some(&a), Some(&b)) = (w.first(), w.get(1)) else {
                        continue;
                    };
                    let (Some(sa), Some(sb)) = (slots.get(a), slots.get(b)) else {
                        continue;
                    };
                    if sa.end() > u128::from(sb.start) {
                        let (first, second) = (a.min(b), a.max(b));
                        return Err(self.invalid(
                            &pm.idx(second),
                            format!(
                                "memslot {} overlaps memslot #{} ({}); memslots must not overlap",
                                range_text(slots.get(second)),
                                first.saturating_add(1),
                                range_text(slots.get(first)),
                            ),
                        ));
                    }
                }
                slots
            }
        };

        let facilities = match &raw.facilities {
            None => facility::DEFAULT.to_vec(),
            Some(list) => {
                let pf = p.key("facilities");
                let mut out = Vec::with_capacity(list.len());
                for (i, f) in list.iter().enumerate() {
                    let pi = pf.idx(i);
                    let n = match f {
                        Scalar::Str(s) => match facility::by_name(s) {
                            Some(n) => n,
                            None if value::parse_integer(s).is_ok() => self.u32(f, &pi, false)?,
                            None => {
                                return Err(self.invalid(
                                    &pi,
                                    format!(
                                        "unknown facility \"{s}\"; expected one of {} or a facility number",
                                        quoted_list(&facility::NAMES)
                                    ),
                                ));
                            }
                        },
                        Scalar::Int(_) => self.u32(f, &pi, false)?,
                    };
                    out.push(n);
                }
                out.sort_unstable();
                out.dedup();
                out
            }
        };

        let mut keys = Vec::new();
        if let Some(list) = &raw.key {
            let pk = p.key("key");
            for (i, k) in list.iter().enumerate() {
                let pi = pk.idx(i);
                let setting = self.key_setting(k, &pi)?;
                if let FrameSelection::At(at) = setting.frames
                    && !memslots.iter().any(|m| m.contains(at))
                {
                    return Err(self.invalid(
                        &pi.key("at"),
                        format!("{at:#x} is not in memory (no memslot holds it)"),
                    ));
                }
                keys.push(setting);
            }
        }

        let mut vm = VmSpec {
            memslots,
            facilities,
            storage_keys: false,
            protected: raw.protected.unwrap_or(false),
            keys,
            data: Vec::new(),
        };
        vm.storage_keys = raw.storage_keys.unwrap_or(!vm.keys.is_empty());

        if let Some(list) = &raw.data {
            let pd = p.key("data");
            for (i, d) in list.iter().enumerate() {
                let pi = pd.idx(i);
                let spec = self.data_spec(d, &pi)?;
                let len = u64::try_from(spec.bytes.len()).unwrap_or(u64::MAX);
                if !vm.range_in_memory(spec.at, len) {
                    return Err(self.invalid(
                        &pi,
                        format!(
                            "{} bytes at {:#x} do not lie entirely in memory; initial data must be inside memslots",
                            spec.bytes.len(),
                            spec.at
                        ),
                    ));
                }
                vm.data.push(spec);
            }
        }
        Ok(vm)
    }

    fn check_memslot(&self, m: &MemslotSpec, p_start: &P<'_>, p_size: &P<'_>) -> R<()> {
        const PAGE: u64 = 0x1000;
        if m.size == 0 {
            return Err(self.invalid(
                p_size,
                "memslot size is 0; give a positive multiple of 4 KiB",
            ));
        }
        if !m.size.is_multiple_of(PAGE) {
            return Err(self.invalid(
                p_size,
                format!(
                    "memslot size {:#x} is not a multiple of 4 KiB (0x1000)",
                    m.size
                ),
            ));
        }
        if !m.start.is_multiple_of(PAGE) {
            return Err(self.invalid(
                p_start,
                format!("memslot start {:#x} is not 4 KiB aligned", m.start),
            ));
        }
        if m.start.checked_add(m.size).is_none() {
            return Err(self.invalid(
                p_size,
                format!(
                    "memslot start {:#x} + size {:#x} overflows 64 bits",
                    m.start, m.size
                ),
            ));
        }
        Ok(())
    }

    fn key_setting(&self, k: &raw::KeyRaw, p: &P<'_>) -> R<KeySetting> {
        let frames = match (&k.at, &k.range) {
            (Some(at), None) => FrameSelection::At(self.addr(at, &p.key("at"))?),
            (None, Some(range)) => {
                let pr = p.key("range");
                let [start, end] = range.as_slice() else {
                    return Err(self.invalid(
                        &pr,
                        format!(
                            "range has {} elements; write it as [START, END] (END exclusive)",
                            range.len()
                        ),
                    ));
                };
                let start = self.addr(start, &pr.idx(0))?;
                let end = self.addr(end, &pr.idx(1))?;
                if start >= end {
                    return Err(self.invalid(
                        &pr,
                        format!("range [{start:#x}, {end:#x}] is empty; END is exclusive and must be above START"),
                    ));
                }
                FrameSelection::Range { start, end }
            }
            (Some(_), Some(_)) => {
                return Err(self.invalid(p, "give either `at` or `range`, not both"));
            }
            (None, None) => {
                return Err(self.invalid(
                    p,
                    "missing field `at` or `range`: say which frames the key is for",
                ));
            }
        };
        let parts_given = k.acc.is_some() || k.f.is_some() || k.r.is_some() || k.c.is_some();
        let byte = match (&k.byte, parts_given) {
            (Some(b), false) => self.byte(b, &p.key("byte"))?,
            (None, true) => {
                let acc = self
                    .opt(&k.acc, |v| {
                        self.u8_max(v, &p.key("acc"), 15, "an access-control value")
                    })?
                    .unwrap_or(0);
                skey::byte(
                    acc,
                    k.f.unwrap_or(false),
                    k.r.unwrap_or(false),
                    k.c.unwrap_or(false),
                )
            }
            (Some(_), true) => {
                return Err(self.invalid(p, "give either `byte` or `acc`/`f`/`r`/`c`, not both"));
            }
            (None, false) => {
                return Err(self.invalid(
                    p,
                    "missing the key: give `byte = ...` or `acc = ...` (with optional `f`, `r`, `c`)",
                ));
            }
        };
        Ok(KeySetting { frames, byte })
    }

    // ----- [[space]] -----

    fn space(&self, s: &raw::SpaceRaw, p: &P<'_>) -> R<SpaceSpec> {
        let name = self.req(&s.name, p, "name")?.clone();
        if name.is_empty() {
            return Err(self.invalid(&p.key("name"), "space name must not be empty"));
        }
        let designation = self.name(
            self.req(&s.type_, p, "type")?,
            &p.key("type"),
            &DESIGNATIONS,
            "designation type",
        )?;
        let tables = self.addr(self.req(&s.tables, p, "tables")?, &p.key("tables"))?;
        let tl = self
            .opt(&s.tl, |v| self.u8_max(v, &p.key("tl"), 3, "a table length"))?
            .unwrap_or(3);

        let mut maps = Vec::new();
        if let Some(list) = &s.map {
            let pm = p.key("map");
            for (i, m) in list.iter().enumerate() {
                maps.push(self.map(m, &pm.idx(i), designation)?);
            }
        }
        let mut edits = Vec::new();
        if let Some(list) = &s.edit {
            let pe = p.key("edit");
            for (i, e) in list.iter().enumerate() {
                edits.push(self.edit(e, &pe.idx(i), designation)?);
            }
        }
        Ok(SpaceSpec {
            name,
            designation,
            tables,
            tl,
            private: s.private.unwrap_or(false),
            real: s.real.unwrap_or(false),
            g: s.g.unwrap_or(false),
            s: s.s.unwrap_or(false),
            x: s.x.unwrap_or(false),
            maps,
            edits,
        })
    }

    fn map(&self, m: &raw::MapRaw, p: &P<'_>, designation: DesignationType) -> R<MapSpec> {
        let virt = self.addr(self.req(&m.virt, p, "virt")?, &p.key("virt"))?;
        let abs = self.addr(self.req(&m.abs, p, "abs")?, &p.key("abs"))?;
        let size = self.addr(self.req(&m.size, p, "size")?, &p.key("size"))?;
        let page = self.name(
            self.req(&m.page, p, "page")?,
            &p.key("page"),
            &PAGES,
            "page size",
        )?;
        let align = page.bytes();
        for (field, v) in [("virt", virt), ("abs", abs), ("size", size)] {
            if !v.is_multiple_of(align) {
                return Err(self.invalid(
                    &p.key(field),
                    format!(
                        "{field} {v:#x} is not aligned to the {} page size (must be a multiple of {align:#x})",
                        page.as_str()
                    ),
                ));
            }
        }
        if size == 0 {
            return Err(self.invalid(
                &p.key("size"),
                "mapping size is 0; give a positive multiple of the page size",
            ));
        }
        if page == PageSize::G2 && designation == DesignationType::Segment {
            return Err(self.invalid(
                &p.key("page"),
                "2G pages are region-third-table entries, which a space of type \"segment\" does not have",
            ));
        }
        let limit = designation.address_limit();
        let virt_end = u128::from(virt) + u128::from(size);
        if virt_end > limit {
            return Err(self.invalid(
                &p.key("size"),
                format!(
                    "mapping {virt:#x}..{virt_end:#x} goes beyond {limit:#x}, the end of what a \"{}\" space translates",
                    designation.as_str()
                ),
            ));
        }
        let abs_end = u128::from(abs) + u128::from(size);
        if abs_end > u128::from(u64::MAX) + 1 {
            return Err(self.invalid(
                &p.key("size"),
                format!(
                    "abs {abs:#x} + size {size:#x} runs past the end of the 64-bit address space"
                ),
            ));
        }
        Ok(MapSpec {
            virt,
            abs,
            size,
            page,
            protect: m.protect.unwrap_or(false),
            iep: m.iep.unwrap_or(false),
        })
    }

    fn edit(&self, e: &raw::EditRaw, p: &P<'_>, designation: DesignationType) -> R<EditSpec> {
        let virt = self.addr(self.req(&e.virt, p, "virt")?, &p.key("virt"))?;
        let level = self.name(
            self.req(&e.level, p, "level")?,
            &p.key("level"),
            &LEVELS,
            "table level",
        )?;
        if level < designation.top_level() {
            return Err(self.invalid(
                &p.key("level"),
                format!(
                    "a space of type \"{}\" has no {} table: its walk starts at the {} table",
                    designation.as_str(),
                    level.as_str(),
                    designation.top_level().as_str()
                ),
            ));
        }
        if u128::from(virt) >= designation.address_limit() {
            return Err(self.invalid(
                &p.key("virt"),
                format!(
                    "{virt:#x} is beyond what a \"{}\" space translates ({:#x}); the walk reaches no entry",
                    designation.as_str(),
                    designation.address_limit()
                ),
            ));
        }
        let change = match (&e.value, &e.set, &e.clear) {
            (Some(v), None, None) => EntryChange::Value(self.u64(v, &p.key("value"))?),
            (None, set, clear) if set.is_some() || clear.is_some() => EntryChange::SetClear {
                set: self.opt(set, |v| self.u64(v, &p.key("set")))?.unwrap_or(0),
                clear: self
                    .opt(clear, |v| self.u64(v, &p.key("clear")))?
                    .unwrap_or(0),
            },
            (Some(_), _, _) => {
                return Err(self.invalid(p, "give either `value` or `set`/`clear`, not both"));
            }
            (None, _, _) => {
                return Err(self.invalid(
                    p,
                    "missing the change: give `set = MASK` and/or `clear = MASK`, or `value = RAW`",
                ));
            }
        };
        Ok(EditSpec {
            virt,
            level,
            change,
        })
    }

    // ----- [cpu] and set -----

    fn psw(&self, v: &ScalarOr<raw::PswTableRaw>, p: &P<'_>) -> R<u64> {
        match v {
            ScalarOr::Scalar(s) => self.u64(s, p),
            ScalarOr::Other(t) => {
                let key = self
                    .opt(&t.key, |v| self.u8_max(v, &p.key("key"), 15, "a PSW key"))?
                    .unwrap_or(0);
                let address_space = self
                    .opt_name(
                        &t.as_,
                        &p.key("as"),
                        &ADDRESS_SPACES,
                        "address-space control",
                    )?
                    .unwrap_or_default();
                let amode = match &t.amode {
                    None => AddressingMode::Bits64,
                    Some(a) => {
                        let pa = p.key("amode");
                        match self.int(a, &pa, false)? {
                            24 => AddressingMode::Bits24,
                            31 => AddressingMode::Bits31,
                            64 => AddressingMode::Bits64,
                            n => {
                                return Err(self.invalid(
                                    &pa,
                                    format!(
                                        "amode {n} is not an addressing mode; use 24, 31 or 64"
                                    ),
                                ));
                            }
                        }
                    }
                };
                Ok(PswFields {
                    dat: t.dat.unwrap_or(false),
                    key,
                    address_space,
                    amode,
                    problem: t.problem.unwrap_or(false),
                }
                .mask())
            }
        }
    }

    /// Parses a register-table key: exactly "0".."15".
    fn reg_index(&self, k: &str, p: &P<'_>, what: &str) -> R<usize> {
        let n = k
            .parse::<usize>()
            .ok()
            .filter(|n| *n < 16 && n.to_string() == k);
        n.ok_or_else(|| {
            self.invalid(
                p,
                format!("\"{k}\" is not a {what} number; use \"0\" to \"15\""),
            )
        })
    }

    /// Converts a register table, calling `f` for each (index, value, path).
    fn regs<T>(
        &self,
        table: &raw::RegTable,
        p: &P<'_>,
        what: &str,
        mut f: impl FnMut(&Scalar, &P<'_>) -> R<T>,
    ) -> R<Vec<(usize, T)>> {
        let mut seen = [false; 16];
        let mut out = Vec::with_capacity(table.0.len());
        for (k, v) in &table.0 {
            let pk = p.key(k);
            let idx = self.reg_index(k, &pk, what)?;
            if let Some(s) = seen.get_mut(idx) {
                if *s {
                    return Err(self.invalid(&pk, format!("{what} {idx} is given twice")));
                }
                *s = true;
            }
            out.push((idx, f(v, &pk)?));
        }
        Ok(out)
    }

    fn cr_value(&self, v: &Scalar, p: &P<'_>, spaces: &[SpaceSpec]) -> R<CrValue> {
        if let Scalar::Str(s) = v
            && let Some(name) = s.strip_prefix("space:")
        {
            if spaces.iter().any(|sp| sp.name == name) {
                return Ok(CrValue::Space(name.to_owned()));
            }
            let known: Vec<String> = spaces.iter().map(|s| format!("\"{}\"", s.name)).collect();
            let hint = if known.is_empty() {
                "no [[space]] is defined".to_owned()
            } else {
                format!("defined spaces: {}", known.join(", "))
            };
            return Err(self.invalid(p, format!("unknown space \"{name}\" ({hint})")));
        }
        Ok(CrValue::Raw(self.u64(v, p)?))
    }

    fn cpu(&self, c: &raw::CpuRaw, p: &P<'_>, spaces: &[SpaceSpec]) -> R<CpuSpec> {
        let mut cpu = CpuSpec::default();
        if let Some(psw) = &c.psw {
            cpu.psw_mask = self.psw(psw, &p.key("psw"))?;
        }
        if let Some(t) = &c.cr {
            for (i, v) in self.regs(t, &p.key("cr"), "control register", |v, pk| {
                self.cr_value(v, pk, spaces)
            })? {
                if let Some(slot) = cpu.cr.get_mut(i) {
                    *slot = v;
                }
            }
        }
        if let Some(t) = &c.ar {
            for (i, v) in self.regs(t, &p.key("ar"), "access register", |v, pk| {
                self.u32(v, pk, false)
            })? {
                if let Some(slot) = cpu.ar.get_mut(i) {
                    *slot = v;
                }
            }
        }
        if let Some(prefix) = &c.prefix {
            cpu.prefix = self.u32(prefix, &p.key("prefix"), true)?;
        }
        cpu.protected = c.protected;
        let psz = p.key("sida-size");
        if let Some(size) = &c.sida_size {
            let n = self.u32(size, &psz, true)?;
            if !n.is_multiple_of(4096) {
                return Err(
                    self.invalid(&psz, format!("sida-size {n:#x} is not a multiple of 4096"))
                );
            }
            value::check_len(u64::from(n)).map_err(|e| self.invalid(&psz, e.to_string()))?;
            cpu.sida_size = n;
        }
        let size = usize::try_from(cpu.sida_size).map_err(|_| self.invalid(&psz, "too large"))?;
        let mut sida = match &c.sida {
            Some(b) => self.bytes(b, &p.key("sida"))?,
            None => Vec::new(),
        };
        if sida.len() > size {
            return Err(self.invalid(
                &p.key("sida"),
                format!(
                    "sida has {} bytes, more than sida-size ({}); raise sida-size",
                    sida.len(),
                    cpu.sida_size
                ),
            ));
        }
        sida.resize(size, 0);
        cpu.sida = sida;
        Ok(cpu)
    }

    fn set(&self, s: &raw::SetRaw, p: &P<'_>, spaces: &[SpaceSpec]) -> R<SetStep> {
        let mut out = SetStep::default();
        if let Some(psw) = &s.psw {
            out.psw_mask = Some(self.psw(psw, &p.key("psw"))?);
        }
        if let Some(t) = &s.cr {
            for (i, v) in self.regs(t, &p.key("cr"), "control register", |v, pk| {
                self.cr_value(v, pk, spaces)
            })? {
                if let Some(slot) = out.cr.get_mut(i) {
                    *slot = Some(v);
                }
            }
        }
        if let Some(t) = &s.ar {
            for (i, v) in self.regs(t, &p.key("ar"), "access register", |v, pk| {
                self.u32(v, pk, false)
            })? {
                if let Some(slot) = out.ar.get_mut(i) {
                    *slot = Some(v);
                }
            }
        }
        out.prefix = self.opt(&s.prefix, |v| self.u32(v, &p.key("prefix"), true))?;
        Ok(out)
    }

    // ----- [[step]] -----

    fn step(&self, s: &raw::StepRaw, p: &P<'_>, spaces: &[SpaceSpec]) -> R<Step> {
        let present: Vec<&str> = [
            ("memop", s.memop.is_some()),
            ("write", s.write.is_some()),
            ("set", s.set.is_some()),
            ("set-key", s.set_key.is_some()),
            ("keyop", s.keyop.is_some()),
            ("get-skeys", s.get_skeys.is_some()),
            ("deliver", s.deliver.is_some()),
            ("translate", s.translate.is_some()),
            ("tprot", s.tprot.is_some()),
            ("check", s.check.is_some()),
            ("check-key", s.check_key.is_some()),
        ]
        .iter()
        .filter(|(_, g)| *g)
        .map(|(n, _)| *n)
        .collect();
        if present.len() > 1 {
            return Err(self.invalid(
                p,
                format!(
                    "a step has exactly one kind, this one has {}; split it into several steps",
                    backticked_and(&present)
                ),
            ));
        }
        let kind = if let Some(m) = &s.memop {
            StepKind::Memop(self.memop(m, &p.key("memop"))?)
        } else if let Some(w) = &s.write {
            StepKind::Write(self.data_spec(w, &p.key("write"))?)
        } else if let Some(st) = &s.set {
            StepKind::Set(Box::new(self.set(st, &p.key("set"), spaces)?))
        } else if let Some(k) = &s.set_key {
            StepKind::SetKey(self.key_setting(k, &p.key("set-key"))?)
        } else if let Some(k) = &s.keyop {
            let pk = p.key("keyop");
            StepKind::Keyop(KeyopStep {
                op: self.name(
                    self.req(&k.op, &pk, "op")?,
                    &pk.key("op"),
                    &KEYOPS,
                    "keyop op",
                )?,
                at: self.addr(self.req(&k.at, &pk, "at")?, &pk.key("at"))?,
                key: self
                    .opt(&k.key, |v| self.byte(v, &pk.key("key")))?
                    .unwrap_or(0),
            })
        } else if let Some(g) = &s.get_skeys {
            let pg = p.key("get-skeys");
            StepKind::GetSkeys(GetSkeysStep {
                at: self.addr(self.req(&g.at, &pg, "at")?, &pg.key("at"))?,
                count: self.u64(self.req(&g.count, &pg, "count")?, &pg.key("count"))?,
            })
        } else if let Some(d) = s.deliver {
            if !d {
                return Err(self.invalid(
                    &p.key("deliver"),
                    "`deliver = false` is not a step; write `deliver = true` or remove the step",
                ));
            }
            StepKind::Deliver
        } else if let Some(t) = &s.translate {
            let pt = p.key("translate");
            StepKind::Translate(TranslateStep {
                gaddr: self.addr(self.req(&t.gaddr, &pt, "gaddr")?, &pt.key("gaddr"))?,
                access: self.name(
                    self.req(&t.access, &pt, "access")?,
                    &pt.key("access"),
                    &ACCESS_MODES,
                    "access",
                )?,
                ar: self
                    .opt(&t.ar, |v| self.byte(v, &pt.key("ar")))?
                    .unwrap_or(0),
                key: self
                    .opt(&t.key, |v| self.byte(v, &pt.key("key")))?
                    .unwrap_or(0),
            })
        } else if let Some(t) = &s.tprot {
            let pt = p.key("tprot");
            StepKind::Tprot(TprotStep {
                gaddr: self.addr(self.req(&t.gaddr, &pt, "gaddr")?, &pt.key("gaddr"))?,
                key: self
                    .opt(&t.key, |v| {
                        self.u8_max(v, &pt.key("key"), 15, "a 4-bit access key")
                    })?
                    .unwrap_or(0),
                ar: self
                    .opt(&t.ar, |v| {
                        self.u8_max(v, &pt.key("ar"), 15, "an access-register number")
                    })?
                    .unwrap_or(0),
            })
        } else if let Some(c) = &s.check {
            StepKind::Check(self.data_spec(c, &p.key("check"))?)
        } else if let Some(c) = &s.check_key {
            let pc = p.key("check-key");
            StepKind::CheckKey(CheckKeyStep {
                at: self.addr(self.req(&c.at, &pc, "at")?, &pc.key("at"))?,
                byte: self.byte(self.req(&c.byte, &pc, "byte")?, &pc.key("byte"))?,
            })
        } else {
            return Err(self.invalid(p, format!("a step needs exactly one of {STEP_KINDS}")));
        };
        let expect = match &s.expect {
            Some(e) => Some(self.expect(e, &p.key("expect"))?),
            None => None,
        };
        Ok(Step {
            line: None,
            kind,
            expect,
        })
    }

    fn memop(&self, m: &raw::MemopRaw, p: &P<'_>) -> R<MemopStep> {
        let pop = p.key("op");
        let op_raw = self.req(&m.op, p, "op")?;
        let op = match op_raw {
            Scalar::Str(s) => match MEMOP_KINDS.iter().find(|(n, _)| *n == s.as_str()) {
                Some((_, k)) => MemOpCode::Named(*k),
                None if value::parse_integer(s).is_ok() => {
                    MemOpCode::Raw(self.u32(op_raw, &pop, false)?)
                }
                None => {
                    return Err(self.invalid(
                        &pop,
                        format!(
                            "unknown op \"{s}\"; expected one of {} or a raw number",
                            quoted_list(&MEMOP_KINDS)
                        ),
                    ));
                }
            },
            n @ Scalar::Int(_) => MemOpCode::Raw(self.u32(n, &pop, false)?),
        };
        let ioctl = self.opt_name(&m.ioctl, &p.key("ioctl"), &IOCTLS, "ioctl")?;
        let ioctl = match (op, ioctl) {
            (_, Some(i)) => i,
            (MemOpCode::Named(k), None) => k.default_ioctl(),
            (MemOpCode::Raw(n), None) => {
                return Err(self.invalid(
                    &pop,
                    format!(
                        "raw op number {n} needs `ioctl = \"vm\"` or `ioctl = \"vcpu\"` \
                         (only named ops have a default ioctl)"
                    ),
                ));
            }
        };
        let gaddr = self
            .opt(&m.gaddr, |v| self.addr(v, &p.key("gaddr")))?
            .unwrap_or(0);
        let pf = p.key("flags");
        let flags = match &m.flags {
            None => 0,
            Some(ScalarOr::Scalar(v)) => self.u64(v, &pf)?,
            Some(ScalarOr::Other(names)) => {
                let mut f = 0u64;
                for (i, n) in names.iter().enumerate() {
                    f |= self.name(n, &pf.idx(i), &memop_flags::NAMES, "memop flag")?;
                }
                f
            }
        };
        let key = self.opt(&m.key, |v| self.byte(v, &p.key("key")))?;
        let ar = self.opt(&m.ar, |v| self.byte(v, &p.key("ar")))?;
        let sida_offset = self.opt(&m.sida_offset, |v| self.u32(v, &p.key("sida-offset"), true))?;
        if sida_offset.is_some() && (key.is_some() || ar.is_some()) {
            return Err(self.invalid(
                &p.key("sida-offset"),
                "`sida-offset` overlays `ar` and `key` in struct kvm_s390_mem_op; give either \
                 `sida-offset` or `ar`/`key`",
            ));
        }
        let data = self.opt_bytes(&m.data, &p.key("data"))?;
        let old = self.opt_bytes(&m.old, &p.key("old"))?;
        let psize = p.key("size");
        let size = match &m.size {
            Some(v) => self.u32(v, &psize, true)?,
            None => {
                let len = data
                    .as_ref()
                    .or(old.as_ref())
                    .map(Vec::len)
                    .ok_or_else(|| {
                        self.invalid(
                        p,
                        "missing field `size` (required when neither `data` nor `old` is given)",
                    )
                    })?;
                u32::try_from(len).map_err(|_| {
                    self.invalid(
                        &psize,
                        format!("{len} bytes do not fit the 32-bit size field"),
                    )
                })?
            }
        };
        for (field, bytes) in [("data", &data), ("old", &old)] {
            if let Some(b) = bytes
                && usize::try_from(size).ok() != Some(b.len())
            {
                return Err(self.invalid(
                    &p.key(field),
                    format!(
                        "{field} has {} bytes but size is {size}; make them equal or omit `size`",
                        b.len()
                    ),
                ));
            }
        }
        Ok(MemopStep {
            op,
            ioctl,
            gaddr,
            size,
            flags,
            key: key.unwrap_or(0),
            ar: ar.unwrap_or(0),
            sida_offset,
            data,
            old,
            buf: self
                .opt_name(&m.buf, &p.key("buf"), &BUFS, "buf")?
                .unwrap_or_default(),
            old_addr: self
                .opt_name(&m.old_addr, &p.key("old-addr"), &BUFS, "old-addr")?
                .unwrap_or_default(),
        })
    }

    fn opt_bytes(&self, b: &Option<raw::BytesRaw>, p: &P<'_>) -> R<Option<Vec<u8>>> {
        b.as_ref().map(|b| self.bytes(b, p)).transpose()
    }

    fn expect(&self, e: &raw::ExpectRaw, p: &P<'_>) -> R<Expect> {
        fn nullable<S, T>(
            v: &Option<Option<S>>,
            f: impl FnOnce(&S) -> R<T>,
        ) -> R<Option<Option<T>>> {
            match v {
                None => Ok(None),
                Some(None) => Ok(Some(None)),
                Some(Some(s)) => f(s).map(|t| Some(Some(t))),
            }
        }
        let ret = nullable(&e.ret, |v| {
            let pr = p.key("ret");
            let n = self.int(v, &pr, false)?;
            value::to_signed(n).map_err(|err| self.invalid(&pr, err.to_string()))
        })?;
        let errno = nullable(&e.errno, |s: &String| {
            let ok = s.len() >= 2
                && s.starts_with('E')
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
            if ok {
                Ok(s.clone())
            } else {
                Err(self.invalid(
                    &p.key("errno"),
                    format!("\"{s}\" is not an errno name; write it like \"EINVAL\" or \"EFAULT\""),
                ))
            }
        })?;

        // pgm and its parts given at the top of expect are merged.
        let pp = p.key("pgm");
        let mut pgm = nullable(&e.pgm, |t: &raw::PgmRaw| self.pgm_parts(t, &pp))?;
        let top = raw::PgmRaw {
            code: e.code.clone(),
            teid: e.teid.clone(),
            exc_access_id: e.exc_access_id.clone(),
            op_access_id: e.op_access_id.clone(),
        };
        let top_given = top.code.is_some()
            || top.teid.is_some()
            || top.exc_access_id.is_some()
            || top.op_access_id.is_some();
        if top_given {
            let parts = self.pgm_parts(&top, p)?;
            match &mut pgm {
                None => pgm = Some(Some(parts)),
                Some(None) => {
                    return Err(self.invalid(
                        &pp,
                        "`pgm` is null but `code`/`teid`/`exc-access-id`/`op-access-id` are given",
                    ));
                }
                Some(Some(inner)) => {
                    let twice = (inner.code.is_some() && parts.code.is_some())
                        || (inner.teid.is_some() && parts.teid.is_some())
                        || (inner.exc_access_id.is_some() && parts.exc_access_id.is_some())
                        || (inner.op_access_id.is_some() && parts.op_access_id.is_some());
                    if twice {
                        return Err(self.invalid(
                            &pp,
                            "a pgm field is given both inside `pgm` and at the top of `expect`; give it once",
                        ));
                    }
                    inner.code = inner.code.or(parts.code);
                    inner.teid = inner.teid.or(parts.teid);
                    inner.exc_access_id = inner.exc_access_id.or(parts.exc_access_id);
                    inner.op_access_id = inner.op_access_id.or(parts.op_access_id);
                }
            }
        }

        Ok(Expect {
            ret,
            errno,
            pgm,
            data: nullable(&e.data, |b| self.bytes(b, &p.key("data")))?,
            old: nullable(&e.old, |b| self.bytes(b, &p.key("old")))?,
            pending: e.pending,
            abs: nullable(&e.abs, |v| self.addr(v, &p.key("abs")))?,
            cc: nullable(&e.cc, |v| {
                self.u8_max(v, &p.key("cc"), 3, "a condition code")
            })?,
            key: nullable(&e.key, |v| self.byte(v, &p.key("key")))?,
            keys: nullable(&e.keys, |b| self.bytes(b, &p.key("keys")))?,
            delivered: e.delivered,
        })
    }

    fn pgm_parts(&self, t: &raw::PgmRaw, p: &P<'_>) -> R<PgmExpect> {
        let code = self.opt(&t.code, |v| {
            let n = self.uint(
                v,
                &p.key("code"),
                u64::from(u16::MAX),
                "a 16-bit code",
                false,
            )?;
            u16::try_from(n).map_err(|_| self.invalid(&p.key("code"), "out of range"))
        })?;
        Ok(PgmExpect {
            code,
            teid: self.opt(&t.teid, |v| self.u64(v, &p.key("teid")))?,
            exc_access_id: self.opt(&t.exc_access_id, |v| self.byte(v, &p.key("exc-access-id")))?,
            op_access_id: self.opt(&t.op_access_id, |v| self.byte(v, &p.key("op-access-id")))?,
        })
    }
}

fn range_text(m: Option<&MemslotSpec>) -> String {
    match m {
        Some(m) => format!("{:#x}..{:#x}", m.start, m.end()),
        None => String::from("?"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM: &str = "[vm]\nmemory = \"1M\"\n";

    fn ok(text: &str) -> Scenario {
        match parse_str(text, Format::Toml, "t.toml") {
            Ok(s) => s,
            Err(e) => panic!("rejected: {e}\n{text}"),
        }
    }

    fn ok_json(text: &str) -> Scenario {
        match parse_str(text, Format::Json, "t.json") {
            Ok(s) => s,
            Err(e) => panic!("rejected: {e}\n{text}"),
        }
    }

    /// The error message for `text`, which must be rejected.
    fn bad(text: &str) -> String {
        match parse_str(text, Format::Toml, "t.toml") {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    fn bad_json(text: &str) -> String {
        match parse_str(text, Format::Json, "t.json") {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    fn step(body: &str) -> String {
        format!("{VM}[[step]]\n{body}\n")
    }

    fn assert_has(msg: &str, parts: &[&str]) {
        for p in parts {
            assert!(msg.contains(p), "{msg:?} lacks {p:?}");
        }
    }

    #[test]
    fn memslots() {
        let s = ok(
            "[vm]\nmemory = [{ start = \"1M\", size = \"1M\" }, { start = 0, size = \"64K\" }]\n",
        );
        assert_eq!(
            s.vm.memslots,
            vec![
                MemslotSpec {
                    start: 1 << 20,
                    size: 1 << 20
                },
                MemslotSpec {
                    start: 0,
                    size: 0x10000
                },
            ]
        );
        let s = ok("[vm]\n[[vm.memory]]\nstart = \"0x100000\"\nsize = \"4K\"\n");
        assert_eq!(
            s.vm.memslots,
            vec![MemslotSpec {
                start: 0x100000,
                size: 0x1000
            }]
        );
        assert!(ok("[vm]\nmemory = []\n").vm.memslots.is_empty());

        let m = bad(
            "[vm]\nmemory = [{ start = 0, size = \"8K\" }, { start = \"4K\", size = \"4K\" }]\n",
        );
        assert_has(&m, &["t.toml:2:", "vm.memory#2", "overlaps memslot #1"]);
        let m = bad(
            "[vm]\nmemory = [{ start = \"4K\", size = \"4K\" }, { start = 0, size = \"8K\" }]\n",
        );
        assert_has(&m, &["vm.memory#2", "overlaps memslot #1"]);
        assert_has(&bad("[vm]\nmemory = 0\n"), &["vm.memory", "size is 0"]);
        assert_has(&bad("[vm]\nmemory = 4095\n"), &["not a multiple of 4 KiB"]);
        assert_has(
            &bad("[vm]\nmemory = [{ start = 1, size = \"4K\" }]\n"),
            &["vm.memory#1.start", "not 4 KiB aligned"],
        );
        assert_has(
            &bad("[vm]\nmemory = [{ start = \"0xffff_ffff_ffff_f000\", size = \"4K\" }]\n"),
            &["overflows 64 bits"],
        );
        assert_has(
            &bad("[vm]\nmemory = [{ size = \"4K\" }]\n"),
            &["missing field `start`"],
        );
        assert_has(&bad("[vm]\n"), &["t.toml:1:1: vm: missing field `memory`"]);
        assert_has(&bad(""), &["t.toml: missing field `vm`"]);
    }

    #[test]
    fn facilities_and_keys() {
        let s = ok("[vm]\nmemory = \"1M\"\nfacilities = [131, \"iep\", \"iep\", \"0x8\"]\n");
        assert_eq!(s.vm.facilities, vec![8, 130, 131]);
        assert!(
            ok("[vm]\nmemory = \"1M\"\nfacilities = []\n")
                .vm
                .facilities
                .is_empty()
        );
        assert_has(
            &bad("[vm]\nmemory = \"1M\"\nfacilities = [\"EDAT1\"]\n"),
            &["vm.facilities#1", "unknown facility \"EDAT1\""],
        );
        assert_has(
            &bad("[vm]\nmemory = \"1M\"\nfacilities = [-1]\n"),
            &["negative"],
        );

        // Any key implies storage-keys = true unless it is explicitly false.
        let with_key = format!("{VM}[[vm.key]]\nat = 0\nbyte = \"0x18\"\n");
        assert!(ok(&with_key).vm.storage_keys);
        let explicit = with_key.replace("[vm]\n", "[vm]\nstorage-keys = false\n");
        let s = ok(&explicit);
        assert!(!s.vm.storage_keys);
        assert_eq!(s.vm.keys.len(), 1);
        assert!(
            ok("[vm]\nmemory = \"1M\"\nstorage-keys = true\n")
                .vm
                .storage_keys
        );
        assert!(!ok(VM).vm.storage_keys);

        let key = |body: &str| format!("{VM}[[vm.key]]\n{body}\n");
        assert_eq!(
            ok(&key("at = 0\nacc = 15\nf = true\nr = true\nc = true"))
                .vm
                .keys[0]
                .byte,
            0xfe
        );
        assert_eq!(ok(&key("at = 0\nacc = 0")).vm.keys[0].byte, 0);
        assert_eq!(ok(&key("at = 0\nbyte = 255")).vm.keys[0].byte, 0xff);
        assert_has(
            &bad(&key("at = 0\nbyte = 256")),
            &["vm.key#1.byte", "out of range"],
        );
        assert_has(
            &bad(&key("at = 0\nacc = 16")),
            &["vm.key#1.acc", "out of range"],
        );
        assert_has(&bad(&key("at = 0\nbyte = 1\nacc = 1")), &["not both"]);
        assert_has(&bad(&key("at = 0")), &["missing the key"]);
        assert_has(&bad(&key("byte = 0")), &["missing field `at` or `range`"]);
        assert_has(
            &bad(&key("at = 0\nrange = [0, 1]\nbyte = 0")),
            &["either `at` or `range`"],
        );
        assert_has(
            &bad(&key("range = [0]\nbyte = 0")),
            &["vm.key#1.range", "[START, END]"],
        );
        assert_has(&bad(&key("range = [16, 16]\nbyte = 0")), &["is empty"]);
        assert_has(
            &bad(&key("at = \"1M\"\nbyte = 0")),
            &["vm.key#1.at", "not in memory"],
        );
        // Ranges may reach beyond memory (frames outside are for the executor).
        let s = ok(&key("range = [0, \"1T\"]\nbyte = 0x10"));
        assert_eq!(
            s.vm.keys[0].frames,
            FrameSelection::Range {
                start: 0,
                end: 1 << 40
            }
        );
    }

    #[test]
    fn vm_data() {
        let s = ok(&format!(
            "{VM}[[vm.data]]\nat = \"0xffff0\"\nhex = \"00 11 22\"\n"
        ));
        assert_eq!(
            s.vm.data,
            vec![DataSpec {
                at: 0xffff0,
                bytes: vec![0, 0x11, 0x22]
            }]
        );
        assert_has(
            &bad(&format!(
                "{VM}[[vm.data]]\nat = \"0xffff0\"\nfill = 1\nlen = 17\n"
            )),
            &["t.toml:3:1: vm.data#1:", "do not lie entirely in memory"],
        );
        // Contiguous memslots together hold data that spans them.
        let two =
            "[vm]\nmemory = [{ start = 0, size = \"4K\" }, { start = \"4K\", size = \"4K\" }]\n";
        ok(&format!(
            "{two}[[vm.data]]\nat = \"0xff0\"\nfill = 1\nlen = 32\n"
        ));
        assert_has(
            &bad(&format!("{VM}[[vm.data]]\nhex = \"00\"\n")),
            &["missing field `at`"],
        );
    }

    #[test]
    fn spaces() {
        let sp = |body: &str| {
            format!("{VM}[[space]]\nname = \"a\"\ntype = \"segment\"\ntables = 0\n{body}\n")
        };
        let s = ok(&sp("tl = 0\nreal = true\ng = true\ns = true\nx = true"));
        let a = &s.spaces[0];
        assert_eq!(
            (a.tl, a.real, a.g, a.s, a.x, a.private),
            (0, true, true, true, true, false)
        );
        assert_eq!(a.asce_low_bits(), 0x200 | 0x80 | 0x40 | 0x20);
        assert_has(&bad(&sp("tl = 4")), &["space#1.tl", "out of range"]);
        assert_has(
            &bad(&format!(
                "{VM}[[space]]\nname = \"a\"\ntype = \"region-fourth\"\ntables = 0\n"
            )),
            &["space#1.type", "unknown designation type \"region-fourth\""],
        );
        assert_has(
            &bad(&format!("{VM}[[space]]\nname = \"a\"\ntables = 0\n")),
            &["space#1", "missing field `type`"],
        );
        assert_has(
            &bad(&format!(
                "{VM}[[space]]\nname = \"\"\ntype = \"segment\"\ntables = 0\n"
            )),
            &["must not be empty"],
        );
        let two = format!(
            "{VM}[[space]]\nname = \"a\"\ntype = \"segment\"\ntables = 0\n\
             [[space]]\nname = \"a\"\ntype = \"segment\"\ntables = 0\n"
        );
        assert_has(
            &bad(&two),
            &["t.toml:8:8: space#2.name: duplicate space name \"a\""],
        );

        let map = |m: &str| sp(&format!("[[space.map]]\n{m}"));
        let s = ok(&map(
            "virt = \"1M\"\nabs = \"3M\"\nsize = \"2M\"\npage = \"1M\"\niep = true",
        ));
        assert_eq!(
            s.spaces[0].maps[0],
            MapSpec {
                virt: 1 << 20,
                abs: 3 << 20,
                size: 2 << 20,
                page: PageSize::M1,
                protect: false,
                iep: true
            }
        );
        assert_has(
            &bad(&map("virt = 0\nabs = \"4K\"\nsize = \"1M\"\npage = \"1M\"")),
            &["space#1.map#1.abs", "not aligned to the 1M page size"],
        );
        assert_has(
            &bad(&map("virt = 0\nabs = 0\nsize = \"6K\"\npage = \"4K\"")),
            &["space#1.map#1.size", "not aligned"],
        );
        assert_has(
            &bad(&map("virt = 0\nabs = 0\nsize = 0\npage = \"4K\"")),
            &["size is 0"],
        );
        assert_has(
            &bad(&map("virt = 0\nabs = 0\nsize = \"4K\"\npage = \"4KiB\"")),
            &["space#1.map#1.page", "unknown page size \"4KiB\""],
        );
        assert_has(
            &bad(&map("virt = 0\nabs = 0\nsize = \"2G\"\npage = \"2G\"")),
            &["2G pages are region-third-table entries"],
        );
        assert_has(
            &bad(&map("virt = \"2G\"\nabs = 0\nsize = \"4K\"\npage = \"4K\"")),
            &["goes beyond 0x80000000"],
        );
        assert_has(
            &bad(&map(
                "virt = 0\nabs = \"0xffff_ffff_ffff_f000\"\nsize = \"8K\"\npage = \"4K\"",
            )),
            &["past the end of the 64-bit address space"],
        );
        assert_has(
            &bad(&map("virt = 0\nabs = 0\nsize = \"4K\"")),
            &["missing field `page`"],
        );
        // 2G pages in a region-third space; the last 2G of a region-first space.
        let r3 = format!(
            "{VM}[[space]]\nname = \"a\"\ntype = \"region-third\"\ntables = 0\n\
             map = [{{ virt = \"2G\", abs = \"4G\", size = \"2G\", page = \"2G\" }}]\n"
        );
        assert_eq!(ok(&r3).spaces[0].maps[0].page, PageSize::G2);
        let r1 = format!(
            "{VM}[[space]]\nname = \"a\"\ntype = \"region-first\"\ntables = 0\n\
             map = [{{ virt = \"0xffff_ffff_8000_0000\", abs = 0, size = \"2G\", page = \"2G\" }}]\n"
        );
        ok(&r1);

        let edit = |e: &str| sp(&format!("[[space.edit]]\n{e}"));
        let s = ok(&edit("virt = 0\nlevel = \"page\"\nclear = \"0x400\""));
        assert_eq!(
            s.spaces[0].edits[0],
            EditSpec {
                virt: 0,
                level: Level::Page,
                change: EntryChange::SetClear {
                    set: 0,
                    clear: 0x400
                }
            }
        );
        assert_eq!(s.spaces[0].edits[0].change.apply(0x1400), 0x1000);
        assert_has(
            &bad(&edit("virt = 0\nlevel = \"region-third\"\nset = 1")),
            &["space#1.edit#1.level", "has no region-third table"],
        );
        assert_has(
            &bad(&edit("virt = 0\nlevel = \"page\"\nvalue = 1\nset = 1")),
            &["not both"],
        );
        assert_has(
            &bad(&edit("virt = 0\nlevel = \"page\"")),
            &["missing the change"],
        );
        assert_has(
            &bad(&edit("virt = \"2G\"\nlevel = \"page\"\nset = 1")),
            &["beyond what"],
        );
        assert_has(
            &bad(&edit("virt = 0\nlevel = \"pte\"\nset = 1")),
            &["unknown table level"],
        );
        assert_has(
            &bad(&edit("virt = 0\nlevel = \"page\"\nset = \"1K\"")),
            &["only for sizes"],
        );
    }

    #[test]
    fn cpu() {
        let cpu = |body: &str| format!("{VM}[cpu]\n{body}\n");
        assert_eq!(
            ok(&cpu("psw = \"0x0400000180000000\"")).cpu.psw_mask,
            0x0400_0001_8000_0000
        );
        assert_eq!(
            ok(&cpu("psw = { as = \"secondary\", amode = 31 }"))
                .cpu
                .psw_mask,
            0x0000_8000_8000_0000
        );
        assert_eq!(
            ok(&cpu("psw = { problem = true, amode = 24 }"))
                .cpu
                .psw_mask,
            0x0001_0000_0000_0000
        );
        assert_eq!(ok(&cpu("psw = {}")).cpu.psw_mask, 0x0000_0001_8000_0000);
        assert_has(
            &bad(&cpu("psw = { key = 16 }")),
            &["cpu.psw.key", "out of range"],
        );
        assert_has(
            &bad(&cpu("psw = { as = \"access\" }")),
            &["cpu.psw.as", "\"ar\""],
        );
        assert_has(&bad(&cpu("psw = { amode = \"64K\" }")), &["cpu.psw.amode"]);
        assert_has(&bad(&cpu("psw = { dta = true }")), &["unknown field `dta`"]);

        let s = ok(&cpu(
            "cr = { 0 = 0, 15 = \"0xffff_ffff_ffff_ffff\" }\nar = { 15 = \"0xffffffff\" }",
        ));
        assert_eq!(s.cpu.cr[0], CrValue::Raw(0));
        assert_eq!(s.cpu.cr[15], CrValue::Raw(u64::MAX));
        assert_eq!(s.cpu.ar[15], u32::MAX);
        assert_has(
            &bad(&cpu("cr = { 16 = 0 }")),
            &["cpu.cr.16", "\"0\" to \"15\""],
        );
        assert_has(&bad(&cpu("cr = { \"01\" = 0 }")), &["cpu.cr.01"]);
        assert_has(&bad(&cpu("cr = { x = 0 }")), &["cpu.cr.x"]);
        assert_has(
            &bad(&cpu("ar = { 1 = \"0x1_0000_0000\" }")),
            &["cpu.ar.1", "32-bit"],
        );
        assert_has(&bad(&cpu("ar = { -1 = 0 }")), &["cpu.ar.-1"]);
        assert_has(
            &bad(&cpu("cr = { 1 = \"space:\" }")),
            &["unknown space \"\""],
        );
        assert_has(
            &bad_json(r#"{"vm": {"memory": "1M"}, "cpu": {"ar": {"3": 1, "3": 2}}}"#),
            &["cpu.ar.3", "given twice"],
        );

        assert_eq!(ok(&cpu("prefix = \"0x7fffe000\"")).cpu.prefix, 0x7fff_e000);
        assert_has(&bad(&cpu("prefix = \"4G\"")), &["cpu.prefix", "32-bit"]);

        let s = ok(&cpu(
            "protected = true\nsida-size = \"8K\"\nsida = { fill = 1, len = 4097 }",
        ));
        assert!(s.cpu_protected());
        assert_eq!(s.cpu.sida_size, 8192);
        assert_eq!(s.cpu.sida.len(), 8192);
        assert_eq!(s.cpu.sida[4096], 1);
        assert_eq!(s.cpu.sida[4097], 0);
        let s = ok("[vm]\nmemory = \"1M\"\nprotected = true\n");
        assert!(s.cpu_protected());
        assert_eq!(s.cpu.protected, None);
        assert!(ok(&cpu("sida-size = 0")).cpu.sida.is_empty());
        assert_has(
            &bad(&cpu("sida-size = 100")),
            &["cpu.sida-size", "multiple of 4096"],
        );
        assert_has(
            &bad(&cpu("sida = \"00\"\nsida-size = 0")),
            &["cpu.sida", "more than sida-size"],
        );
        assert_has(&bad(&cpu("sida-size = \"1T\"")), &["cpu.sida-size"]);
    }

    #[test]
    fn step_kinds() {
        assert_has(
            &bad(&step("")),
            &["t.toml:3:1: step#1:", "needs exactly one of"],
        );
        assert_has(
            &bad(&step("expect = { ret = 0 }")),
            &["needs exactly one of"],
        );
        assert_has(
            &bad(&step("deliver = true\ntprot = { gaddr = 0 }")),
            &["`deliver` and `tprot`"],
        );
        assert_has(&bad(&step("deliver = false")), &["step#1.deliver"]);
        assert_has(
            &bad(&step("memop = [\"logical-read\"]")),
            &["expected a table"],
        );
        assert_has(&bad(&step("delivr = true")), &["unknown field `delivr`"]);

        let s = ok(&step("keyop = { op = \"rrbe\", at = \"4K\" }"));
        assert_eq!(
            s.steps[0].kind,
            StepKind::Keyop(KeyopStep {
                op: KeyopOp::Rrbe,
                at: 4096,
                key: 0
            })
        );
        assert_has(
            &bad(&step("keyop = { op = \"ske\", at = 0 }")),
            &["unknown keyop op"],
        );
        assert_has(
            &bad(&step("keyop = { op = \"iske\" }")),
            &["missing field `at`"],
        );
        assert_has(
            &bad(&step("get-skeys = { at = 0 }")),
            &["step#1.get-skeys", "missing field `count`"],
        );
        let s = ok(&step("get-skeys = { at = 0, count = 0 }"));
        assert_eq!(
            s.steps[0].kind,
            StepKind::GetSkeys(GetSkeysStep { at: 0, count: 0 })
        );

        let s = ok(&step(
            "translate = { gaddr = 1, access = \"fetch\", key = 0xf0 }",
        ));
        assert_eq!(
            s.steps[0].kind,
            StepKind::Translate(TranslateStep {
                gaddr: 1,
                access: AccessMode::Fetch,
                ar: 0,
                key: 0xf0
            })
        );
        assert_has(
            &bad(&step("translate = { gaddr = 1 }")),
            &["missing field `access`"],
        );
        assert_has(
            &bad(&step("translate = { gaddr = 1, access = \"write\" }")),
            &["unknown access"],
        );
        let s = ok(&step("tprot = { gaddr = 1, key = 15, ar = 15 }"));
        assert_eq!(
            s.steps[0].kind,
            StepKind::Tprot(TprotStep {
                gaddr: 1,
                key: 15,
                ar: 15
            })
        );
        assert_has(
            &bad(&step("tprot = { gaddr = 1, key = 16 }")),
            &["step#1.tprot.key", "4-bit"],
        );
        assert_has(
            &bad(&step("tprot = { gaddr = 1, ar = 16 }")),
            &["step#1.tprot.ar"],
        );
        assert_has(
            &bad(&step("check-key = { at = 0 }")),
            &["missing field `byte`"],
        );
        assert_has(
            &bad(&step("check-key = { at = 0, byte = 256 }")),
            &["out of range"],
        );
        let s = ok(&step("set-key = { at = \"2M\", byte = 0x10 }"));
        assert_eq!(
            s.steps[0].kind,
            StepKind::SetKey(KeySetting {
                frames: FrameSelection::At(2 << 20),
                byte: 0x10
            })
        );
        let s = ok(&step(
            "write = { at = \"0xffff_ffff_ffff_fffe\", hex = \"0102\" }",
        ));
        assert_eq!(
            s.steps[0].kind,
            StepKind::Write(DataSpec {
                at: u64::MAX - 1,
                bytes: vec![1, 2]
            })
        );
        assert_has(
            &bad(&step(
                "write = { at = \"0xffff_ffff_ffff_fffe\", hex = \"010203\" }",
            )),
            &["past the end"],
        );
        let s = ok(&step("set = { prefix = 0 }"));
        let StepKind::Set(set) = &s.steps[0].kind else {
            panic!()
        };
        assert_eq!(set.psw_mask, None);
        assert_eq!(set.prefix, Some(0));
        assert_has(
            &bad(&step("set = { sida = \"00\" }")),
            &["unknown field `sida`"],
        );
        assert_has(
            &bad(&step("set = { cr = { 1 = \"space:x\" } }")),
            &["step#1.set.cr.1", "unknown space"],
        );
    }

    #[test]
    fn memops() {
        let memop = |body: &str| -> MemopStep {
            match ok(&step(&format!("memop = {{ {body} }}")))
                .steps
                .remove(0)
                .kind
            {
                StepKind::Memop(m) => m,
                other => panic!("{other:?}"),
            }
        };
        let m = memop("op = \"absolute-read\", size = 16");
        assert_eq!((m.ioctl, m.size, m.gaddr, m.flags), (Ioctl::Vm, 16, 0, 0));
        assert_eq!(
            (m.buf, m.old_addr, m.data.clone(), m.old.clone()),
            (UserBuf::Valid, UserBuf::Valid, None, None)
        );
        let m = memop("op = \"logical-write\", ioctl = \"vm\", size = \"64K\"");
        assert_eq!((m.ioctl, m.size), (Ioctl::Vm, 65536));
        let m = memop("op = \"0x2\", ioctl = \"vcpu\", size = 1");
        assert_eq!(m.op, MemOpCode::Raw(2));
        assert_eq!(m.op.kind(), Some(MemOpKind::SidaRead));
        let m = memop(
            "op = \"0xffffffff\", ioctl = \"vcpu\", size = \"0xffffffff\", flags = \"0xffff_ffff_ffff_ffff\"",
        );
        assert_eq!(
            (m.op.number(), m.size, m.flags),
            (u32::MAX, u32::MAX, u64::MAX)
        );
        let m = memop("op = \"absolute-cmpxchg\", old = { hex = \"0011\" }");
        assert_eq!((m.size, m.data.clone()), (2, None));
        let m = memop(
            "op = \"logical-read\", size = 1, flags = [\"inject-exception\", \"inject-exception\"], key = 255, ar = 255",
        );
        assert_eq!(
            (m.flags, m.key, m.ar),
            (memop_flags::INJECT_EXCEPTION, 255, 255)
        );
        let m = memop("op = \"sida-write\", sida-offset = \"0xffffffff\", data = \"00\"");
        assert_eq!(m.effective_sida_offset(), u32::MAX);

        assert_has(
            &bad(&step("memop = { size = 1 }")),
            &["step#1.memop", "missing field `op`"],
        );
        assert_has(
            &bad(&step("memop = { op = 7, size = 1 }")),
            &["step#1.memop.op", "needs `ioctl"],
        );
        assert_has(
            &bad(&step("memop = { op = \"7\", size = 1 }")),
            &["needs `ioctl"],
        );
        assert_has(
            &bad(&step("memop = { op = -1, ioctl = \"vm\", size = 1 }")),
            &["negative"],
        );
        assert_has(
            &bad(&step(
                "memop = { op = \"0x1_0000_0000\", ioctl = \"vm\", size = 1 }",
            )),
            &["32-bit"],
        );
        assert_has(
            &bad(&step("memop = { op = \"read\", size = 1 }")),
            &["unknown op \"read\""],
        );
        assert_has(
            &bad(&step(
                "memop = { op = \"logical-read\", ioctl = \"cpu\", size = 1 }",
            )),
            &["unknown ioctl"],
        );
        assert_has(
            &bad(&step("memop = { op = \"logical-read\" }")),
            &["missing field `size`"],
        );
        assert_has(
            &bad(&step("memop = { op = \"logical-read\", size = \"4G\" }")),
            &["step#1.memop.size", "32-bit"],
        );
        assert_has(
            &bad(&step(
                "memop = { op = \"logical-read\", size = 1, key = 256 }",
            )),
            &["step#1.memop.key"],
        );
        assert_has(
            &bad(&step(
                "memop = { op = \"logical-read\", size = 1, ar = -1 }",
            )),
            &["step#1.memop.ar"],
        );
        assert_has(
            &bad(&step(
                "memop = { op = \"logical-read\", size = 1, flags = [\"check_only\"] }",
            )),
            &["step#1.memop.flags#1", "unknown memop flag"],
        );
        assert_has(
            &bad(&step(
                "memop = { op = \"logical-read\", size = 1, flags = [1] }",
            )),
            &["expected a string"],
        );
        assert_has(
            &bad(&step(
                "memop = { op = \"absolute-cmpxchg\", data = \"0011\", old = \"00\" }",
            )),
            &["step#1.memop.old", "old has 1 bytes but size is 2"],
        );
        assert_has(
            &bad(&step(
                "memop = { op = \"sida-read\", size = 1, key = 0, sida-offset = 0 }",
            )),
            &["overlays"],
        );
        assert_has(
            &bad(&step(
                "memop = { op = \"logical-read\", size = 1, buf = \"NULL\" }",
            )),
            &["unknown buf"],
        );
    }

    #[test]
    fn expectations() {
        let exp = |e: &str| {
            ok(&step(&format!("deliver = true\nexpect = {{ {e} }}")))
                .steps
                .remove(0)
                .expect
                .unwrap()
        };
        assert_eq!(exp(""), Expect::default());
        let e = exp(
            "ret = \"-0x16\", errno = \"E2BIG\", abs = \"1M\", cc = 3, key = 0xfe, keys = \"00ff\"",
        );
        assert_eq!(e.ret, Some(Some(-22)));
        assert_eq!(e.errno, Some(Some("E2BIG".to_owned())));
        assert_eq!(e.abs, Some(Some(1 << 20)));
        assert_eq!(e.cc, Some(Some(3)));
        assert_eq!(e.key, Some(Some(0xfe)));
        assert_eq!(e.keys, Some(Some(vec![0, 0xff])));
        let e = exp("code = 4, exc-access-id = 1, op-access-id = 2, teid = \"0x0000000010001400\"");
        assert_eq!(
            e.pgm,
            Some(Some(PgmExpect {
                code: Some(4),
                teid: Some(0x1000_1400),
                exc_access_id: Some(1),
                op_access_id: Some(2)
            }))
        );
        let e = exp("pgm = { code = 0x38 }, op-access-id = 0");
        assert_eq!(
            e.pgm,
            Some(Some(PgmExpect {
                code: Some(0x38),
                op_access_id: Some(0),
                ..Default::default()
            }))
        );
        assert_has(
            &bad(&step(
                "deliver = true\nexpect = { ret = \"0x8000_0000_0000_0000\" }",
            )),
            &["signed"],
        );
        assert_has(
            &bad(&step("deliver = true\nexpect = { code = 65536 }")),
            &["step#1.expect.code"],
        );
        assert_has(
            &bad(&step("deliver = true\nexpect = { pgm = { cod = 1 } }")),
            &["unknown field `cod`"],
        );
        assert_has(
            &bad(&step("deliver = true\nexpect = { errno = \"EINVAL \" }")),
            &["errno name"],
        );
        assert_has(
            &bad(&step("deliver = true\nexpect = { cc = -1 }")),
            &["negative"],
        );
        assert_has(
            &bad(&step("deliver = true\nexpect = { data = { hex = \"x\" } }")),
            &["step#1.expect.data.hex"],
        );
        assert_has(
            &bad(&step("deliver = true\nexpect = { delivered = 1 }")),
            &["expected a boolean"],
        );

        // JSON null: "must be null".
        let s = ok_json(
            r#"{"vm": {"memory": "1M"}, "step": [{"deliver": true, "expect": {
                "ret": null, "errno": null, "pgm": null, "data": null, "old": null,
                "abs": null, "cc": null, "key": null, "keys": null, "delivered": null}}]}"#,
        );
        let e = s.steps[0].expect.clone().unwrap();
        assert_eq!(
            e,
            Expect {
                ret: Some(None),
                errno: Some(None),
                pgm: Some(None),
                data: Some(None),
                old: Some(None),
                pending: None,
                abs: Some(None),
                cc: Some(None),
                key: Some(None),
                keys: Some(None),
                delivered: Some(None),
            }
        );
        assert_has(
            &bad_json(
                r#"{"vm": {"memory": "1M"}, "step": [{"deliver": true, "expect": {"pgm": null, "code": 4}}]}"#,
            ),
            &["step#1.expect.pgm", "null"],
        );
    }

    #[test]
    fn names_and_profiles() {
        assert_eq!(
            ok(&format!("profile = \"linux-7.0\"\n{VM}")).profile,
            Profile::Linux70
        );
        assert_has(
            &bad(&format!("profile = \"7.0\"\n{VM}")),
            &["t.toml:1:11: profile: unknown profile"],
        );
        assert_eq!(ok(&format!("name = \"x y\"\n{VM}")).name, "x y");
        assert_eq!(
            parse_str(VM, Format::Toml, "a/b/c.toml").unwrap().name,
            "c.toml"
        );
    }

    #[test]
    fn json_positions() {
        let text = "{\n  \"vm\": {\"memory\": \"1M\"},\n  \"step\": [\n    {\"deliver\": true},\n    {\"tprot\": {\"gaddr\": 0, \"key\": 99}}\n  ]\n}\n";
        let e = parse_str(text, Format::Json, "p.json").unwrap_err();
        assert_eq!(e.to_string().split(": ").next(), Some("p.json:5:35"));
        assert_has(&e.to_string(), &["step#2.tprot.key"]);
        // Keys with escapes and strings with brackets do not confuse the scanner.
        let text = "{\"name\": \"a]}[{\\\"\", \"vm\": {\"memory\": \"1M\"}, \"st\\u0065p\": [{\"check\": {\"at\": -1, \"hex\": \"\"}}]}";
        let e = parse_str(text, Format::Json, "p.json").unwrap_err();
        assert_has(
            &e.to_string(),
            &["p.json:1:", "step#1.check.at", "negative"],
        );
        assert_eq!(e.column(), Some(76));
    }

    #[test]
    fn toml_positions_and_step_lines() {
        let text = format!(
            "step = [\n  {{ deliver = true }},\n  {{ check = {{ at = 0, hex = \"\" }} }},\n]\n{VM}"
        );
        let s = ok(&text);
        assert_eq!(
            s.steps.iter().map(|s| s.line).collect::<Vec<_>>(),
            vec![Some(2), Some(3)]
        );
        let text = format!(
            "{VM}[[step]]\ndeliver = true\n\n[[step]]\n[step.tprot]\ngaddr = 0\nkey = \"0x10\"\n"
        );
        let e = parse_str(&text, Format::Toml, "p.toml").unwrap_err();
        assert_eq!((e.line(), e.column()), (Some(9), Some(7)));
        assert_has(&e.to_string(), &["p.toml:9:7: step#2.tprot.key:"]);
    }

    #[test]
    fn formats_and_files() {
        assert_eq!(Format::from_path(Path::new("a.TOML")), Some(Format::Toml));
        assert_eq!(Format::from_path(Path::new("a.json")), Some(Format::Json));
        assert_eq!(Format::from_path(Path::new("a.yaml")), None);
        assert_eq!(Format::from_path(Path::new("toml")), None);
        let e = load(Path::new("/nonexistent/dir/x.toml")).unwrap_err();
        assert!(matches!(e, ScenarioError::Io { .. }));
        assert_eq!(e.file(), "/nonexistent/dir/x.toml");
        let e = load(Path::new("x.txt")).unwrap_err();
        assert!(matches!(e, ScenarioError::UnknownFormat { .. }));

        let dir = std::env::temp_dir().join(format!("s390-scenario-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ok.toml");
        std::fs::write(&file, VM).unwrap();
        let s = load(&file).unwrap();
        assert_eq!(s.name, "ok.toml");
        let file = dir.join("bad.json");
        std::fs::write(&file, "{\"vm\": {\"memory\": \"1M\", \"x\": 1}}").unwrap();
        let e = load(&file).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!("{}:1:", file.display())),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn line_index() {
        let text = "ab\ncé\n\nx";
        let li = LineIndex::new(text);
        assert_eq!(li.line_col(text, 0), (1, 1));
        assert_eq!(li.line_col(text, 3), (2, 1));
        assert_eq!(li.line_col(text, 6), (2, 3));
        assert_eq!(li.line_col(text, 7), (3, 1));
        assert_eq!(li.line_col(text, 8), (4, 1));
        assert_eq!(li.line_col(text, 999), (4, 2));
        assert_eq!(li.line_col(text, 5), (2, 3)); // inside 'é': byte fallback
    }
}
