//! Instruction counts of shmring's hot paths under valgrind's callgrind, through gungraun:
//! a count that no CPU placement, frequency or neighbour moves, so a regression of a few
//! percent in the engine shows.
//!
//! Each benchmark builds its objects in a `setup` function (not measured: gungraun collects
//! only inside the benchmark function), then runs a loop of [`N`] operations and hands its
//! objects back, so that their drop is not measured either. The per-operation count is the
//! benchmark's total divided by [`N`] (docs/benchmarks.md, "Instruction counts"). Everything
//! runs in one thread: a send is followed by its receive, so no call ever waits.
//!
//! Run (the runner `gungraun-runner` at the library's version must be installed; .ci/run
//! does it): `cargo bench -p shmring-instr --bench instr`. The budget check against the
//! committed baseline: `cargo run -p shmring-instr --bin instr-check -- check`.

use gungraun::prelude::*;
use serde::{Deserialize, Serialize};
use shmring::connection::{self, Connection};
use shmring::queue::Queue;
use shmring::ring::{mpmc, spsc};
use shmring::sync::Mutex;
use shmring::value::Value;
use std::hint::black_box;

/// Operations per benchmark (each a pair: send + receive, push + pop, lock + unlock, ...).
/// Must equal `shmring_instr::OPS` (the check divides by it).
const N: u64 = shmring_instr::OPS;

/// The typed message of the `shmring bench` typed rows
/// (crates/shmring-bench/src/suites/typed/peers.rs): 22 bytes in postcard's format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, shmring::Schema)]
#[postcard(crate = shmring::postcard_schema)]
struct Tick {
    seq: u64,
    px: f64,
    qty: u32,
    sym: String,
}

/// A [`Tick`] decoded in place (its symbol borrowed from the message), as the bench's
/// `typed-borrowed` and `typed-batch` rows decode it.
#[derive(Debug, PartialEq, Deserialize)]
struct TickRef<'a> {
    seq: u64,
    px: f64,
    qty: u32,
    sym: &'a str,
}

impl Tick {
    /// Message `i`; as in the bench rows, every `seq` encodes to 5 bytes and every `qty`
    /// to 2, so that every message has the same length.
    fn nth(i: u64) -> Tick {
        Tick {
            seq: (1 << 32) + i,
            px: 100.0 + (i % 1000) as f64 * 0.25,
            qty: 200 + (i % 100) as u32,
            sym: "EURUSD".to_owned(),
        }
    }
}

/// An SPSC ring's two ends, a message of the benchmark's size and a receive buffer.
struct Spsc {
    tx: spsc::Producer,
    rx: spsc::Consumer,
    msg: Vec<u8>,
    buf: Vec<u8>,
}

fn setup_spsc(size: usize) -> Spsc {
    let (tx, rx) = spsc::channel(1 << 16).expect("spsc channel");
    let mut s = Spsc {
        tx,
        rx,
        msg: vec![7u8; size],
        buf: Vec::with_capacity(size),
    };
    // One round outside the measurement: one-off work of a first call is not an
    // operation's cost.
    s.tx.send(&s.msg).expect("send");
    s.rx.recv_into(&mut s.buf).expect("recv");
    s
}

// `send` + `recv_into`, [`N`] times, at 8 B, 64 B and 4 KiB.
#[library_benchmark]
#[bench::b8(setup = setup_spsc, args = (8))]
#[bench::b64(setup = setup_spsc, args = (64))]
#[bench::b4096(setup = setup_spsc, args = (4096))]
fn spsc_send_recv(mut s: Spsc) -> Spsc {
    for _ in 0..N {
        s.tx.send(black_box(&s.msg)).expect("send");
        black_box(s.rx.recv_into(&mut s.buf).expect("recv"));
    }
    s
}

/// An MPMC queue's two ends (1024 slots of 64 bytes), a 64-byte message, a buffer.
struct Mpmc {
    tx: mpmc::Producer,
    rx: mpmc::Consumer,
    msg: Vec<u8>,
    buf: Vec<u8>,
}

fn setup_mpmc() -> Mpmc {
    let (tx, rx) = mpmc::channel(1024, 64).expect("mpmc channel");
    let mut q = Mpmc {
        tx,
        rx,
        msg: vec![7u8; 64],
        buf: Vec::with_capacity(64),
    };
    q.tx.push(&q.msg).expect("push"); // warm-up, as in setup_spsc
    q.rx.pop_into(&mut q.buf).expect("pop");
    q
}

// `push` + `pop_into` of 64 bytes, [`N`] times.
#[library_benchmark]
#[bench::b64(setup = setup_mpmc)]
fn mpmc_push_pop(mut q: Mpmc) -> Mpmc {
    for _ in 0..N {
        q.tx.push(black_box(&q.msg)).expect("push");
        black_box(q.rx.pop_into(&mut q.buf).expect("pop"));
    }
    q
}

fn setup_pipe() -> (Connection, Connection, Tick) {
    let (mut r, mut w) = connection::pipe(false).expect("pipe");
    w.send(&Tick::nth(0)).expect("send"); // warm-up, as in setup_spsc
    let t = r.recv::<Tick>().expect("recv");
    (r, w, t)
}

// A one-way `Pipe`: `send(&tick)` + `recv::<Tick>()`, [`N`] times.
#[library_benchmark]
#[bench::tick(setup = setup_pipe)]
fn pipe_send_recv_tick((mut r, mut w, mut t): (Connection, Connection, Tick)) -> (Connection, Connection, Tick) {
    for i in 0..N {
        t.seq = (1 << 32) + i;
        w.send(black_box(&t)).expect("send");
        t = black_box(r.recv::<Tick>().expect("recv"));
    }
    (r, w, t)
}

// The same pipe received in place: `send(&tick)` + `recv_ref()` decoded as a `TickRef`
// (no allocation), [`N`] times.
#[library_benchmark]
#[bench::tick(setup = setup_pipe)]
fn pipe_send_recv_ref_tick((mut r, mut w, mut t): (Connection, Connection, Tick)) -> (Connection, Connection, Tick) {
    for i in 0..N {
        t.seq = (1 << 32) + i;
        w.send(black_box(&t)).expect("send");
        let m = r.recv_ref().expect("recv_ref");
        black_box(m.decode::<TickRef<'_>>().expect("decode"));
    }
    (r, w, t)
}

/// Messages per batch of `pipe_send_recv_batch_tick` (divides [`N`]).
const BATCH: u64 = 16;

// The same pipe received in batches: [`BATCH`] `send(&tick)`, then one
// `recv_batch(BATCH)` decoding each as a `TickRef`; [`N`] messages in all.
#[library_benchmark]
#[bench::b16(setup = setup_pipe)]
fn pipe_send_recv_batch_tick((mut r, mut w, mut t): (Connection, Connection, Tick)) -> (Connection, Connection, Tick) {
    for round in 0..N / BATCH {
        for j in 0..BATCH {
            t.seq = (1 << 32) + round * BATCH + j;
            w.send(black_box(&t)).expect("send");
        }
        let got = r
            .recv_batch(BATCH as usize, |m| {
                black_box(m.decode::<TickRef<'_>>().expect("decode"));
            })
            .expect("recv_batch");
        assert_eq!(got, BATCH as usize);
    }
    (r, w, t)
}

fn setup_queue() -> (Queue<Tick>, Tick) {
    let mut q = Queue::new(1024).expect("queue");
    q.put(&Tick::nth(0)).expect("put"); // warm-up, as in setup_spsc
    let t = q.get().expect("get");
    (q, t)
}

// A `Queue<Tick>` (1024 slots): `put(&tick)` + `get()`, [`N`] times.
#[library_benchmark]
#[bench::tick(setup = setup_queue)]
fn queue_put_get_tick((mut q, mut t): (Queue<Tick>, Tick)) -> (Queue<Tick>, Tick) {
    for i in 0..N {
        t.seq = (1 << 32) + i;
        q.put(black_box(&t)).expect("put");
        t = black_box(q.get().expect("get"));
    }
    (q, t)
}

// The same queue taken in place: `put(&tick)` + `get_ref()` decoded as a `TickRef`,
// [`N`] times.
#[library_benchmark]
#[bench::tick(setup = setup_queue)]
fn queue_put_get_ref_tick((mut q, mut t): (Queue<Tick>, Tick)) -> (Queue<Tick>, Tick) {
    for i in 0..N {
        t.seq = (1 << 32) + i;
        q.put(black_box(&t)).expect("put");
        let m = q.get_ref().expect("get_ref");
        black_box(m.decode::<TickRef<'_>>().expect("decode"));
    }
    (q, t)
}

fn setup_mutex() -> Mutex<u64> {
    let m = Mutex::anonymous(0u64).expect("mutex");
    // Warm-up, as in setup_spsc: a thread's first lock reads its identity from
    // /proc/TID/stat, a parse whose count varies with the numbers' lengths run to run.
    drop(m.lock().expect("lock"));
    m
}

// An uncontended `Mutex<u64>`: `lock`, add one, unlock (the guard's drop), [`N`] times.
#[library_benchmark]
#[bench::u64(setup = setup_mutex)]
fn mutex_lock_unlock(m: Mutex<u64>) -> Mutex<u64> {
    for _ in 0..N {
        let mut g = m.lock().expect("lock");
        *g += black_box(1);
    }
    m
}

fn setup_value() -> Value<u64> {
    let v = Value::anonymous(0u64).expect("value");
    v.fetch_add(1); // warm-up, as in setup_spsc
    v
}

// `Value<u64>::fetch_add(1)`, [`N`] times.
#[library_benchmark]
#[bench::u64(setup = setup_value)]
fn value_fetch_add(v: Value<u64>) -> Value<u64> {
    for _ in 0..N {
        black_box(v.fetch_add(black_box(1)));
    }
    v
}

library_benchmark_group!(name = rings, benchmarks = [spsc_send_recv, mpmc_push_pop]);

library_benchmark_group!(
    name = typed,
    benchmarks = [
        pipe_send_recv_tick,
        pipe_send_recv_ref_tick,
        pipe_send_recv_batch_tick,
        queue_put_get_tick,
        queue_put_get_ref_tick
    ]
);

library_benchmark_group!(name = sync, benchmarks = [mutex_lock_unlock, value_fetch_add]);

main!(library_benchmark_groups = rings, typed, sync);
