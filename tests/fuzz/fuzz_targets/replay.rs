//! Fuzz target `replay`: see tests/fuzz/README.md and `tapstack_fuzz::replay`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tapstack_fuzz::replay(data));
