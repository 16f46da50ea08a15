//! In-process (two threads) throughput of the SPSC ring, side by side with baselines
//! measured in the same run: `std::sync::mpsc::sync_channel` and a Unix stream socket
//! pair. Cross-process numbers are `shmring bench`'s job; this bench isolates the
//! ring's algorithm from process scheduling.
//!
//! Run: `cargo bench --bench spsc` (criterion prints each group's rows together;
//! compare within a group).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shmring::WaitStrategy;
use shmring::ring::spsc;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

fn shmring_run(size: usize, iters: u64) -> Duration {
    let (mut tx, mut rx) =
        spsc::channel_with(1 << 20, &spsc::RingOptions::new().wait(WaitStrategy::default())).unwrap();
    let msg = vec![7u8; size];
    let t = std::thread::spawn(move || {
        for _ in 0..iters {
            tx.send(&msg).unwrap();
        }
    });
    let start = Instant::now();
    let mut buf = Vec::with_capacity(size);
    for _ in 0..iters {
        rx.recv_into(&mut buf).unwrap();
    }
    let d = start.elapsed();
    t.join().unwrap();
    d
}

fn mpsc_run(size: usize, iters: u64) -> Duration {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(1024);
    let t = std::thread::spawn(move || {
        for _ in 0..iters {
            tx.send(vec![7u8; size]).unwrap();
        }
    });
    let start = Instant::now();
    for _ in 0..iters {
        std::hint::black_box(rx.recv().unwrap());
    }
    let d = start.elapsed();
    t.join().unwrap();
    d
}

fn unix_run(size: usize, iters: u64) -> Duration {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let t = std::thread::spawn(move || {
        let mut frame = (size as u32).to_le_bytes().to_vec();
        frame.extend(std::iter::repeat_n(7u8, size));
        let mut w = std::io::BufWriter::with_capacity(1 << 16, &mut a);
        for _ in 0..iters {
            w.write_all(&frame).unwrap();
        }
        w.flush().unwrap();
    });
    let start = Instant::now();
    let mut r = std::io::BufReader::with_capacity(1 << 16, &mut b);
    let mut buf = vec![0u8; size];
    for _ in 0..iters {
        let mut len = [0u8; 4];
        r.read_exact(&mut len).unwrap();
        r.read_exact(&mut buf[..u32::from_le_bytes(len) as usize]).unwrap();
    }
    let d = start.elapsed();
    t.join().unwrap();
    d
}

fn throughput(c: &mut Criterion) {
    for size in [8usize, 64, 4096] {
        let mut g = c.benchmark_group(format!("spsc_throughput_{size}B"));
        g.throughput(Throughput::Elements(1));
        g.measurement_time(Duration::from_secs(3));
        g.bench_function(BenchmarkId::new("shmring", size), |b| {
            b.iter_custom(|n| shmring_run(size, n))
        });
        g.bench_function(BenchmarkId::new("std_sync_channel", size), |b| {
            b.iter_custom(|n| mpsc_run(size, n))
        });
        g.bench_function(BenchmarkId::new("unix_stream_buffered", size), |b| {
            b.iter_custom(|n| unix_run(size, n))
        });
        g.finish();
    }
}

criterion_group!(benches, throughput);
criterion_main!(benches);
