//! Target `scenario`: the scenario reader (`scenario::parse_str`) on arbitrary bytes,
//! as TOML and as JSON. It must never panic, and every problem must come back as a
//! `ScenarioError` whose message starts with the file name (scenario-format.md: "a
//! message naming the file, the place and the problem").

use s390_gaccess::scenario::{Format, parse_str};

/// The file name the harness passes.
pub const FILE: &str = "fuzz-input";

/// Run one input.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for format in [Format::Toml, Format::Json] {
        match parse_str(&text, format, FILE) {
            Ok(s) => {
                // A parsed scenario is a plain value: formatting it must work too.
                let _ = format!("{s:?}");
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with(FILE),
                    "error message does not name the file: {msg:?}"
                );
            }
        }
    }
}
