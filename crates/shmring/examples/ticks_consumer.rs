//! The other half of `ticks_producer` (see there): opens the named queue
//! `shmring-example-ticks` (waiting up to 30 s for the producer to create it), takes
//! ticks until the final `None`, and checks that none is missing or out of order.

use shmring::Queue;
use std::time::{Duration, Instant};

#[path = "shared/tick.rs"]
mod tick;
use tick::{NAME, Tick};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut q: Queue<Option<Tick>> = Queue::open_wait(NAME, Duration::from_secs(30))?;
    eprintln!("consumer: opened {NAME}");
    let start = Instant::now();
    let mut next = 0u64;
    let mut notional = 0.0;
    while let Some(t) = q.get()? {
        if t.seq != next {
            return Err(format!("tick {} arrived where {next} was expected", t.seq).into());
        }
        notional += t.price * f64::from(t.qty);
        next += 1;
    }
    eprintln!(
        "consumer: {next} ticks in order in {:.2?}, notional {notional:.2}",
        start.elapsed()
    );
    Ok(())
}
