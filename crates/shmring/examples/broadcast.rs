//! One publisher, N subscriber processes: the publisher creates a lossless broadcast
//! ring, starts N copies of this program as subscribers, waits until they attached,
//! publishes M ticks (a sequence number and a price), and each subscriber checks that
//! it saw every tick in order.
//!
//! ```text
//! cargo run --release --example broadcast -- [SUBSCRIBERS] [TICKS]
//! ```

use shmring::WaitStrategy;
use shmring::broadcast::{self, Options, Params, Policy, Publisher, RecvError, Start, Subscriber};
use std::process::Command;
use std::time::{Duration, Instant};

fn subscriber(name: &str, ticks: u64) -> Result<(), Box<dyn std::error::Error>> {
    let opts = Options::new().start(Start::Oldest).wait(WaitStrategy::Adaptive {
        spin: Duration::from_micros(25),
        yields: 8,
    });
    let mut rx = Subscriber::open_with(name, &opts)?;
    let mut sum = 0u64;
    for expect in 0..ticks {
        let (seq, price) = rx.read(|m| {
            let seq = u64::from_le_bytes(m[..8].try_into().expect("8 bytes"));
            let price = u64::from_le_bytes(m[8..16].try_into().expect("8 bytes"));
            (seq, price)
        })?;
        if seq != expect {
            return Err(format!("tick {seq} arrived, {expect} expected").into());
        }
        sum = sum.wrapping_add(price);
    }
    match rx.recv_timeout(Duration::from_secs(30)) {
        Err(RecvError::Disconnected) => {}
        other => return Err(format!("after the last tick: {other:?}").into()),
    }
    println!(
        "subscriber {} (slot {}): {ticks} ticks, price sum {sum}",
        std::process::id(),
        rx.slot()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--subscriber") {
        return subscriber(&args[2], args[3].parse()?);
    }
    let n: usize = args.get(1).map_or(Ok(3), |s| s.parse())?;
    let ticks: u64 = args.get(2).map_or(Ok(100_000), |s| s.parse())?;
    let name = format!("shmring-example-broadcast-{}", std::process::id());
    let params = Params {
        capacity: 1 << 16,
        subscribers: 64,
        policy: Policy::Lossless,
    };
    let mut tx = Publisher::create_with(&name, params, &Options::new())?;
    let mut children = (0..n)
        .map(|_| {
            Command::new(std::env::current_exe()?)
                .args(["--subscriber", &name, &ticks.to_string()])
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    while broadcast::inspect(&name)?.subscribers.len() < n {
        if start.elapsed() > Duration::from_secs(30) {
            return Err("subscribers did not attach".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let t0 = Instant::now();
    for seq in 0..ticks {
        let mut g = tx.claim(16)?;
        g[..8].copy_from_slice(&seq.to_le_bytes());
        g[8..].copy_from_slice(&(100 + seq % 7).to_le_bytes());
        g.commit();
    }
    drop(tx); // subscribers drain, then see Disconnected
    let mut ok = true;
    for c in &mut children {
        ok &= c.wait()?.success();
    }
    println!("published {ticks} ticks to {n} subscribers in {:.1?}", t0.elapsed());
    if ok { Ok(()) } else { Err("a subscriber failed".into()) }
}
