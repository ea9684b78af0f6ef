//! Fuzz target `frame_path`: see tests/fuzz/README.md and `tapstack_fuzz::program::run`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tapstack_fuzz::program::run(data));
