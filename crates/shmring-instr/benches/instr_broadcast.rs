//! Instruction counts of the broadcast ring with one subscriber, under valgrind's
//! callgrind through gungraun: the same loop as the SPSC ring's `spsc_send_recv` rows
//! in `benches/instr.rs` (a send followed by its receive, [`N`] times, one thread), so
//! that the two per-message counts compare (docs/benchmarks.md).
//!
//! A bench binary of its own: adding this row to `benches/instr.rs` moved that binary's
//! `mutex_lock_unlock` row by 18% with the library unchanged (code layout and inlining
//! of the bench binary), so the broadcast row lives here and the other rows' baseline
//! stays put. `instr-check` runs both binaries and checks every row against the one
//! committed baseline.
//!
//! Run: `cargo bench -p shmring-instr --bench instr_broadcast`.

use gungraun::prelude::*;
use shmring::broadcast::{self, Policy, Publisher, Subscriber};
use std::hint::black_box;

/// Operations per benchmark (each a send + its receive). Must equal
/// `shmring_instr::OPS` (the check divides by it).
const N: u64 = shmring_instr::OPS;

/// A lossless broadcast ring of 64 KiB (the SPSC rows' capacity) with 4 subscriber
/// slots, its publisher and one subscriber, a message of the benchmark's size and a
/// receive buffer.
struct Bcast {
    tx: Publisher,
    rx: Subscriber,
    msg: Vec<u8>,
    buf: Vec<u8>,
}

fn setup_broadcast(size: usize) -> Bcast {
    let (tx, rx) = broadcast::channel(1 << 16, 4, Policy::Lossless).expect("broadcast channel");
    let mut b = Bcast {
        tx,
        rx,
        msg: vec![7u8; size],
        buf: Vec::with_capacity(size),
    };
    // One round outside the measurement, as in `instr.rs`'s setup_spsc.
    b.tx.send(&b.msg).expect("send");
    b.rx.recv_into(&mut b.buf).expect("recv");
    b
}

// `send` + `recv_into`, [`N`] times, at 8 B and 64 B (compare `spsc_send_recv`).
#[library_benchmark]
#[bench::b8(setup = setup_broadcast, args = (8))]
#[bench::b64(setup = setup_broadcast, args = (64))]
fn broadcast_send_recv(mut b: Bcast) -> Bcast {
    for _ in 0..N {
        b.tx.send(black_box(&b.msg)).expect("send");
        black_box(b.rx.recv_into(&mut b.buf).expect("recv"));
    }
    b
}

library_benchmark_group!(name = broadcast_rows, benchmarks = [broadcast_send_recv]);

main!(library_benchmark_groups = broadcast_rows);
