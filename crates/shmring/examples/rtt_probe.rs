//! Where a ring's round trip goes: two threads pinned to CPUs 0 and 1 bounce messages
//! through a pair of rings (`recv` and `try_recv` polling), alternating with physical
//! references measured in the same run: one cache line bounced (the floor of `shmring
//! bench`), two lines (one per direction: the floor of any pair of queues), and a
//! hand-written pair of stamp-published rings at several record strides. `solo` is the
//! software cost of one send + recv on one thread.
//!
//! Run: `cargo run --release --example rtt_probe` (means of 300k round trips).
use shmring::WaitStrategy;
use shmring::ring::spsc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

fn floor(n: u64) -> f64 {
    let w = Arc::new(AtomicU64::new(0));
    let w2 = w.clone();
    let t = std::thread::spawn(move || {
        pin(1);
        let mut v = 1;
        while v < 2 * n {
            while w2.load(Ordering::Acquire) != v {
                std::hint::spin_loop();
            }
            w2.store(v + 1, Ordering::Release);
            v += 2;
        }
    });
    pin(0);
    let start = Instant::now();
    let mut v = 0;
    while v < 2 * n {
        w.store(v + 1, Ordering::Release);
        while w.load(Ordering::Acquire) != v + 2 {
            std::hint::spin_loop();
        }
        v += 2;
    }
    let d = start.elapsed();
    t.join().unwrap();
    d.as_nanos() as f64 / n as f64
}

#[repr(align(128))]
struct Line(AtomicU64);

/// Two lines: ping on one, pong on the other (what two rings must do at least).
fn floor2(n: u64) -> f64 {
    let w = Arc::new([Line(AtomicU64::new(0)), Line(AtomicU64::new(0))]);
    let w2 = w.clone();
    let t = std::thread::spawn(move || {
        pin(1);
        for v in 1..=n {
            while w2[0].0.load(Ordering::Acquire) != v {
                std::hint::spin_loop();
            }
            w2[1].0.store(v, Ordering::Release);
        }
    });
    pin(0);
    let start = Instant::now();
    for v in 1..=n {
        w[0].0.store(v, Ordering::Release);
        while w[1].0.load(Ordering::Acquire) != v {
            std::hint::spin_loop();
        }
    }
    let d = start.elapsed();
    t.join().unwrap();
    d.as_nanos() as f64 / n as f64
}

/// A hand-written pair of stamp-published rings with records every `stride` bytes in a
/// 64 KiB buffer: the hardware cost of walking through ring memory.
fn mini(n: u64, stride: usize) -> f64 {
    const SIZE: usize = 1 << 16;
    let bufs: Arc<Vec<AtomicU64>> = Arc::new((0..2 * SIZE / 8).map(|_| AtomicU64::new(0)).collect());
    let b2 = bufs.clone();
    let slots = (SIZE / stride) as u64;
    let at = move |ring: usize, i: u64| ring * SIZE / 8 + ((i % slots) as usize * stride) / 8;
    let t = std::thread::spawn(move || {
        pin(1);
        for i in 1..=n {
            while b2[at(0, i)].load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
            let v = b2[at(0, i) + 1].load(Ordering::Relaxed);
            b2[at(1, i) + 1].store(v, Ordering::Relaxed);
            b2[at(1, i)].store(i, Ordering::Release);
        }
    });
    pin(0);
    let start = Instant::now();
    for i in 1..=n {
        bufs[at(0, i) + 1].store(7, Ordering::Relaxed);
        bufs[at(0, i)].store(i, Ordering::Release);
        while bufs[at(1, i)].load(Ordering::Acquire) != i {
            std::hint::spin_loop();
        }
    }
    let d = start.elapsed();
    t.join().unwrap();
    d.as_nanos() as f64 / n as f64
}

fn ring(n: u64, poll: bool) -> f64 {
    let (mut atx, mut arx) = spsc::channel_with(1 << 16, &spsc::RingOptions::new().wait(WaitStrategy::Spin)).unwrap();
    let (mut btx, mut brx) = spsc::channel_with(1 << 16, &spsc::RingOptions::new().wait(WaitStrategy::Spin)).unwrap();
    let t = std::thread::spawn(move || {
        pin(1);
        let mut buf = Vec::with_capacity(64);
        for _ in 0..n {
            if poll {
                while arx.try_recv_into(&mut buf).is_err() {
                    std::hint::spin_loop();
                }
            } else {
                arx.recv_into(&mut buf).unwrap();
            }
            btx.send(&buf).unwrap();
        }
    });
    pin(0);
    let msg = [7u8; 8];
    let mut buf = Vec::with_capacity(64);
    let start = Instant::now();
    for _ in 0..n {
        atx.send(&msg).unwrap();
        if poll {
            while brx.try_recv_into(&mut buf).is_err() {
                std::hint::spin_loop();
            }
        } else {
            brx.recv_into(&mut buf).unwrap();
        }
    }
    let d = start.elapsed();
    t.join().unwrap();
    d.as_nanos() as f64 / n as f64
}

/// Software cost: send then recv on one thread, no cross-core traffic.
fn solo(n: u64) -> f64 {
    let (mut tx, mut rx) = spsc::channel_with(1 << 16, &spsc::RingOptions::new().wait(WaitStrategy::Spin)).unwrap();
    let msg = [7u8; 8];
    let mut buf = Vec::with_capacity(64);
    let start = Instant::now();
    for _ in 0..n {
        tx.send(&msg).unwrap();
        rx.recv_into(&mut buf).unwrap();
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let n = 300_000;
    println!("solo send+recv: {:.1} ns, {:.1} ns", solo(n * 10), solo(n * 10));
    for _ in 0..3 {
        println!(
            "mini stride 32: {:.0} ns | stride 64: {:.0} ns | stride 128: {:.0} ns | stride 256: {:.0} ns",
            mini(n, 32),
            mini(n, 64),
            mini(n, 128),
            mini(n, 256)
        );
        println!(
            "floor {:.0} ns | two-line floor {:.0} ns | ring recv {:.0} ns | ring try_recv {:.0} ns | floor {:.0} ns",
            floor(n),
            floor2(n),
            ring(n, false),
            ring(n, true),
            floor(n)
        );
    }
}
