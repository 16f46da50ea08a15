//! Frames from a hostile peer fed to a connection's reassembler, and messages framed by
//! the sender's own framer and reassembled, then decoded with the codec: see
//! `shmring::fuzzing::frames`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shmring::fuzzing::frames(data);
});
