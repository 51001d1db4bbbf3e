//! Lines of the admin socket.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    courier::fuzzing::admin_request(data);
});
