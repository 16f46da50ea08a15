//! The bytes of a whole broadcast ring segment file (segment header, control block,
//! subscriber table, records), read by a subscriber through the real path: see
//! `shmring::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shmring::fuzzing::broadcast_image(data);
});
