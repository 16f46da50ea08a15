//! The bytes of a whole SPSC ring segment file (segment header, control block, data
//! region), opened through the real path and drained: see `shmring::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shmring::fuzzing::segment_image(data);
});
