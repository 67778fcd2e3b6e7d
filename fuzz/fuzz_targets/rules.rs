//! Arbitrary text through the rule parser (header, options, content hex,
//! pcre, addresses and ports).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mirador::fuzzing::parse_rules(data);
});
