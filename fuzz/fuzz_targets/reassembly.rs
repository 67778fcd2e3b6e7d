//! Arbitrary segment and acknowledgment sequences through one reassembled
//! stream, checked against the model stream they are cut from.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mirador::fuzzing::reassemble_model(data);
});
