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

/// The reference ring of `shmring bench` (crates/shmring-bench/src/refring.rs: `ref-ring`),
/// its send and receive copied as they are, over heap memory instead of a memfd mapping
/// (the instructions are the same; the bench's copy is private to that crate): an 8-byte
/// length prefix per record padded to 8, tail and head on lines of their own, cached
/// indices, one bound check, no liveness. It gives the SPSC rows a floor to compare with.
mod refring {
    use std::sync::atomic::{AtomicU64, Ordering};

    const LINE: usize = 128;
    const CONTROL: usize = 2 * LINE;

    /// Both ends over one allocation (8-aligned: a `Vec<u64>`).
    pub(crate) struct RefRing {
        mem: Vec<u64>,
        cap: u64,
        tail: u64,
        cached_head: u64,
        head: u64,
        cached_tail: u64,
    }

    fn record(len: u64) -> u64 {
        len.div_ceil(8).saturating_mul(8).saturating_add(8)
    }

    impl RefRing {
        pub(crate) fn new(cap: usize) -> RefRing {
            assert!(cap.is_power_of_two() && cap >= 4096);
            RefRing {
                mem: vec![0u64; (CONTROL + cap) / 8],
                cap: cap as u64,
                tail: 0,
                cached_head: 0,
                head: 0,
                cached_tail: 0,
            }
        }

        fn base(&mut self) -> *mut u8 {
            self.mem.as_mut_ptr().cast::<u8>()
        }

        fn index(&mut self, line: usize) -> &AtomicU64 {
            // SAFETY: the allocation is at least CONTROL bytes and 8-aligned; these words
            // are only accessed through atomics while the ring lives.
            unsafe { AtomicU64::from_ptr(self.base().add(line * LINE).cast::<u64>()) }
        }

        fn write(&mut self, pos: u64, src: &[u8]) {
            let off = (pos & (self.cap - 1)) as usize;
            let first = src.len().min(self.cap as usize - off);
            let data = self.base().wrapping_add(CONTROL);
            // SAFETY: as in refring.rs: both copies stay inside the data area.
            unsafe {
                std::ptr::copy_nonoverlapping(src.as_ptr(), data.add(off), first);
                std::ptr::copy_nonoverlapping(src.as_ptr().add(first), data, src.len() - first);
            }
        }

        fn read(&mut self, pos: u64, dst: &mut [u8]) {
            let off = (pos & (self.cap - 1)) as usize;
            let first = dst.len().min(self.cap as usize - off);
            let data = self.base().wrapping_add(CONTROL);
            // SAFETY: as in `write`.
            unsafe {
                std::ptr::copy_nonoverlapping(data.add(off), dst.as_mut_ptr(), first);
                std::ptr::copy_nonoverlapping(data, dst.as_mut_ptr().add(first), dst.len() - first);
            }
        }

        #[inline]
        pub(crate) fn send(&mut self, msg: &[u8]) -> Result<(), String> {
            let need = record(msg.len() as u64);
            if need > self.cap {
                return Err(format!("a {}-byte message does not fit", msg.len()));
            }
            while self.tail + need - self.cached_head > self.cap {
                // Acquire: pairs with the Release store of the head in recv.
                self.cached_head = self.index(1).load(Ordering::Acquire);
                if self.tail + need - self.cached_head > self.cap {
                    std::hint::spin_loop();
                }
            }
            self.write(self.tail, &(msg.len() as u64).to_le_bytes());
            self.write(self.tail + 8, msg);
            self.tail += need;
            let tail = self.tail;
            // Release: pairs with the Acquire load of the tail in recv.
            self.index(0).store(tail, Ordering::Release);
            Ok(())
        }

        #[inline]
        pub(crate) fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize, String> {
            while self.head == self.cached_tail {
                // Acquire: pairs with the Release store of the tail in send.
                self.cached_tail = self.index(0).load(Ordering::Acquire);
                if self.head == self.cached_tail {
                    std::hint::spin_loop();
                }
            }
            let mut prefix = [0u8; 8];
            self.read(self.head, &mut prefix);
            let len = u64::from_le_bytes(prefix);
            if record(len) > self.cached_tail.saturating_sub(self.head) {
                return Err(format!("record of {len} bytes overruns the tail"));
            }
            let n = len as usize;
            if buf.len() != n {
                buf.resize(n, 0);
            }
            self.read(self.head + 8, buf);
            self.head += record(len);
            let head = self.head;
            // Release: pairs with the Acquire load of the head in send.
            self.index(1).store(head, Ordering::Release);
            Ok(n)
        }
    }
}

/// The reference ring (1 MiB, as the bench's `ref-ring` rows), a message and a buffer.
struct RefRing {
    ring: refring::RefRing,
    msg: Vec<u8>,
    buf: Vec<u8>,
}

fn setup_refring(size: usize) -> RefRing {
    let mut r = RefRing {
        ring: refring::RefRing::new(1 << 20),
        msg: vec![7u8; size],
        buf: Vec::with_capacity(size),
    };
    r.ring.send(&r.msg).expect("send"); // warm-up, as in setup_spsc
    r.ring.recv(&mut r.buf).expect("recv");
    r
}

// The reference ring's `send` + `recv`, [`N`] times, at 8 B and 64 B: the floor of the
// SPSC rows (not shmring's code).
#[library_benchmark]
#[bench::b8(setup = setup_refring, args = (8))]
#[bench::b64(setup = setup_refring, args = (64))]
fn refring_send_recv(mut r: RefRing) -> RefRing {
    for _ in 0..N {
        r.ring.send(black_box(&r.msg)).expect("send");
        black_box(r.ring.recv(&mut r.buf).expect("recv"));
    }
    r
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

/// The reference of [`mpmc_push_pop`]: crossbeam's `ArrayQueue` of 1024 64-byte arrays
/// (the queue of the MPMC rows of `shmring bench`), one thread, a 64-byte message.
fn setup_arrayqueue() -> (crossbeam_queue::ArrayQueue<[u8; 64]>, [u8; 64]) {
    let q = crossbeam_queue::ArrayQueue::new(1024);
    let msg = [7u8; 64];
    q.push(msg).expect("push"); // warm-up, as in setup_mpmc
    q.pop().expect("pop");
    (q, msg)
}

// crossbeam `ArrayQueue::push` + `pop` of 64 bytes, [`N`] times: not shmring code, a
// reference for the MPMC queue's count (what the same work costs in-process without
// crash safety).
#[library_benchmark]
#[bench::b64(setup = setup_arrayqueue)]
fn arrayqueue_push_pop(
    (q, msg): (crossbeam_queue::ArrayQueue<[u8; 64]>, [u8; 64]),
) -> crossbeam_queue::ArrayQueue<[u8; 64]> {
    for _ in 0..N {
        q.push(black_box(msg)).expect("push");
        black_box(q.pop().expect("pop"));
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

library_benchmark_group!(
    name = rings,
    benchmarks = [spsc_send_recv, refring_send_recv, mpmc_push_pop, arrayqueue_push_pop]
);

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
