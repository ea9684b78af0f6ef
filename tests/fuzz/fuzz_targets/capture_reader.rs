//! Fuzz target `capture_reader`: see tests/fuzz/README.md and `tapstack_fuzz::capture_reader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tapstack_fuzz::capture_reader(data));
