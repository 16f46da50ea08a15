//! A pool of worker processes fed by a `JoinableQueue`, like Python's
//! `multiprocessing` worker pattern:
//!
//! ```sh
//! cargo run --release --example worker_pool -- 4 1000
//! ```
//!
//! The parent creates a named `JoinableQueue` of tasks and a `Queue` of results, starts
//! N workers (this same program re-executed with `SHMRING_WORKER` set, finding the
//! queues by name), puts the tasks, `join`s — which returns once every task has been
//! marked done — then collects and checks the results and closes the task queue, which
//! ends the workers.

use shmring::queue::GetError;
use shmring::{JoinableQueue, Queue};
use std::process::Command;

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

fn worker(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut tasks: JoinableQueue<u64> = JoinableQueue::open(&format!("{name}-tasks"))?;
    let mut results: Queue<(u64, bool)> = Queue::open(&format!("{name}-results"))?;
    loop {
        match tasks.get() {
            Ok(n) => {
                results.put(&(n, is_prime(n)))?;
                tasks.task_done()?;
            }
            Err(GetError::Closed) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(name) = std::env::var("SHMRING_WORKER") {
        return worker(&name);
    }
    let workers: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(4);
    let count: u64 = std::env::args().nth(2).map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let name = format!("shmring-example-pool-{}", std::process::id());
    let mut tasks: JoinableQueue<u64> = JoinableQueue::create(&format!("{name}-tasks"), 256)?;
    let mut results: Queue<(u64, bool)> = Queue::create(&format!("{name}-results"), 0)?;
    let mut children = Vec::new();
    for _ in 0..workers {
        children.push(
            Command::new(std::env::current_exe()?)
                .env("SHMRING_WORKER", &name)
                .spawn()?,
        );
    }
    let first = 1_000_000_007u64;
    for n in first..first + count {
        tasks.put(&n)?;
    }
    tasks.join()?;
    // Every task is done, so every result is already in the queue.
    let mut primes = 0;
    for _ in 0..count {
        let (n, prime) = results.get_nowait()?;
        assert_eq!(prime, is_prime(n));
        primes += usize::from(prime);
    }
    tasks.close();
    for mut c in children {
        let status = c.wait()?;
        assert!(status.success(), "a worker failed: {status}");
    }
    println!("{workers} workers checked {count} numbers from {first}: {primes} primes");
    Ok(())
}
