//! Arbitrary bytes as a sequence of frames through decode, defragmentation
//! and the flow table.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mirador::fuzzing::run_pipeline(data);
});
