//! Arbitrary bytes as a pcap or pcapng file: the reader must return packets or
//! an error, never panic or loop.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mirador::fuzzing::read_capture(data);
});
