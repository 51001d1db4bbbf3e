//! Messages of the agent protocol, as the listener and the agent parse them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    courier::fuzzing::protocol(data);
});
