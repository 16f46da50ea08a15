//! A producer process and a consumer process over an anonymous ring: the parent
//! re-executes itself as the consumer and hands it the ring's descriptor.
//!
//! Run: `cargo run --release --example pipeline`

use shmring::ring::spsc::{self, Consumer};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(fd) = std::env::var("PIPELINE_FD") {
        // Child: rebuild the consumer end from the inherited descriptor.
        // SAFETY: the parent passed us this inherited descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd.parse()?) };
        let mut rx = Consumer::from_fd(fd)?;
        let mut total = 0u64;
        let mut n = 0u64;
        let mut buf = Vec::new();
        while rx.recv_into(&mut buf).is_ok() {
            total += u64::from_le_bytes(buf[..8].try_into()?);
            n += 1;
        }
        println!("consumer: {n} messages, sum {total}");
        return Ok(());
    }
    let (mut tx, rx) = spsc::channel(1 << 16)?;
    let fd = rx.into_fd().expect("anonymous rings are segment-backed");
    // A duplicate without close-on-exec shares the open file description (and so the
    // consumer's liveness lock) with the child.
    let child_fd = rustix::io::fcntl_dupfd_cloexec(&fd, 3)?;
    rustix::io::fcntl_setfd(&child_fd, rustix::io::FdFlags::empty())?;
    let mut child = Command::new(std::env::current_exe()?)
        .env("PIPELINE_FD", child_fd.as_raw_fd().to_string())
        .spawn()?;
    drop((fd, child_fd));
    for i in 0..1_000_000u64 {
        tx.send(&i.to_le_bytes())?;
    }
    drop(tx); // the consumer drains, then sees Disconnected
    child.wait()?;
    println!(
        "producer: sent 1000000 messages, expected sum {}",
        999_999u64 * 1_000_000 / 2
    );
    Ok(())
}
