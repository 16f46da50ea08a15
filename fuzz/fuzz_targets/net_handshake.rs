//! Each side of the socket handshake against a peer sending arbitrary bytes: see
//! `shmring::fuzzing::net_handshake`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shmring::fuzzing::net_handshake(data);
});
