//! Scenario files (scenario-format.md).
