//! Fuzz target `scenario_parse`: see tests/fuzz/README.md and `tapstack_fuzz::scenario_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tapstack_fuzz::scenario_parse(data));
