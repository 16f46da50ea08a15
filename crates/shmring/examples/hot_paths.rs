//! The hot paths of shmring in one thread, 200,000 times each, for instruction counts
//! under callgrind, which no CPU placement moves: the SPSC ring's send + try_recv_into
//! (`spsc`), the pipe Connection's send_bytes + try_recv_bytes_into (`pipe`), an
//! uncontended Mutex lock/unlock (`mutex`), an RLock locked twice and released twice
//! (`rlock`), a Semaphore try_acquire/release (`sem`), an Event set/is_set/clear
//! (`event`), an Event wait on a set event and a timed Mutex lock (`waits`), the MPMC
//! queue's push + try_read (`mpmc`), a `Queue<u64>`'s put + get_nowait (`queue`).
//!
//! `cargo build --release --example hot_paths && valgrind --tool=callgrind
//! target/release/examples/hot_paths spsc` (docs/benchmarks.md has the figures).
use std::hint::black_box;

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let n: usize = 200_000;
    let msg = [7u8; 64];
    let mut buf = Vec::with_capacity(4096);
    match which.as_str() {
        "spsc" => {
            let (mut tx, mut rx) = shmring::ring::spsc::channel(1 << 16).unwrap();
            for _ in 0..n {
                tx.send(&msg).unwrap();
                black_box(rx.try_recv_into(&mut buf).unwrap());
            }
        }
        "pipe" => {
            let (mut a, mut b) = shmring::pipe(true).unwrap();
            for _ in 0..n {
                a.send_bytes(&msg).unwrap();
                black_box(b.try_recv_bytes_into(&mut buf).unwrap());
            }
        }
        "mpmc" => {
            let (mut tx, mut rx) = shmring::ring::mpmc::channel(1024, 64).unwrap();
            for _ in 0..n {
                tx.push(&msg).unwrap();
                black_box(rx.try_read().unwrap().len());
            }
        }
        "queue" => {
            let mut q = shmring::Queue::<u64>::new(1024).unwrap();
            for i in 0..n as u64 {
                q.put(&i).unwrap();
                black_box(q.get_nowait().unwrap());
            }
        }
        "mutex" => {
            let m = shmring::sync::Mutex::<u64>::anonymous(0).unwrap();
            for _ in 0..n {
                let mut g = m.lock().unwrap();
                *g += 1;
            }
            black_box(*m.lock().unwrap());
        }
        "rlock" => {
            let l = shmring::sync::RLock::anonymous().unwrap();
            for _ in 0..n {
                let outer = l.lock().unwrap();
                black_box(l.lock().unwrap());
                drop(outer);
            }
        }
        "waits" => {
            let e = shmring::sync::Event::anonymous().unwrap();
            let m = shmring::sync::Mutex::<u64>::anonymous(0).unwrap();
            e.set();
            for _ in 0..n {
                black_box(e.wait());
                let mut g = m.lock_timeout(std::time::Duration::from_secs(1)).unwrap();
                *g += 1;
            }
        }
        "sem" => {
            let s = shmring::sync::Semaphore::anonymous(1).unwrap();
            for _ in 0..n {
                s.try_acquire().unwrap();
                s.release(1).unwrap();
            }
        }
        "event" => {
            let e = shmring::sync::Event::anonymous().unwrap();
            for _ in 0..n {
                e.set();
                black_box(e.is_set());
                e.clear();
            }
        }
        other => {
            eprintln!(
                "hot_paths: unknown workload {other:?}; one of spsc, pipe, mpmc, queue, mutex, rlock, sem, event, waits"
            );
            std::process::exit(2);
        }
    }
}
