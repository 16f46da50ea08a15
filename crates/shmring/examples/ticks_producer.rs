//! One half of a producer/consumer pair of programs that find each other by name (run
//! the other half, `ticks_consumer`, in another terminal, before or after this one):
//!
//! ```sh
//! cargo run --release --example ticks_producer -- 100000 &
//! cargo run --release --example ticks_consumer
//! ```
//!
//! The producer creates the named queue `shmring-example-ticks` (in `/dev/shm`), puts
//! typed ticks into it, then a final `None`; it removes the name when it exits, after
//! waiting for the consumer to drain the queue (at most 30 s).

use shmring::Queue;
use std::time::{Duration, Instant};

#[path = "shared/tick.rs"]
mod tick;
use tick::{NAME, Tick};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let mut q: Queue<Option<Tick>> = Queue::create(NAME, 1024)?;
    eprintln!("producer: created {NAME}; putting {n} ticks");
    let start = Instant::now();
    for seq in 0..n {
        let tick = Tick {
            seq,
            symbol: "AAPL".into(),
            price: 189.91 + (seq % 100) as f64 / 100.0,
            qty: 100,
        };
        // Waits while the queue is full (back-pressure), e.g. until a consumer starts.
        q.put(&Some(tick))?;
    }
    q.put(&None)?;
    eprintln!("producer: {n} ticks put in {:.2?}", start.elapsed());
    // Keep the name alive until the consumer has taken everything.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !q.empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}
