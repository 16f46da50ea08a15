//! [`wait`]: which of many socket connections have something to receive — Python's
//! `multiprocessing.connection.wait` over sockets: [`crate::select`] over socket
//! connections (one `poll(2)`).

use super::SocketConnection;
use crate::select::{FdWatch, fd};
use crate::sync::Interrupted;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// The indices of the connections in `conns` whose receive would not wait for a
/// message to start (a message, or its first bytes, is there; or the peer closed or
/// reset the connection, or this end was closed: the receive reports it at once),
/// waiting at most `timeout` (`None`: as long as it takes) for at least one. Empty:
/// the timeout passed. One `poll(2)` over every socket; a whole message already in a
/// connection's read buffer counts without a system call.
///
/// ```
/// use shmring::net::{self, Address, Client, Listener};
/// use std::time::Duration;
///
/// let l = Listener::bind(&Address::Abstract(format!("shmring-doc-wait-{}", std::process::id())), None)?;
/// let addr = l.local_addr().clone();
/// let (tx, rx) = std::sync::mpsc::channel::<&str>();
/// let clients = std::thread::spawn(move || -> Result<(), shmring::ConnError> {
///     let (mut a, mut b) = (Client::connect(&addr, None)?, Client::connect(&addr, None)?);
///     rx.recv().unwrap();
///     b.send(&"to the second")?;
///     rx.recv().unwrap();
///     a.close();
///     Ok(())
/// });
/// let (sa, sb) = (l.accept()?, l.accept()?);
/// assert!(net::wait(&[&sa, &sb], Some(Duration::from_millis(1))).is_empty());
/// tx.send("send")?;
/// assert_eq!(net::wait(&[&sa, &sb], None), [1]);
/// tx.send("close")?;
/// clients.join().unwrap()?;
/// assert_eq!(net::wait(&[&sa, &sb], None), [0, 1]); // `a` closed its end
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn wait(conns: &[&SocketConnection], timeout: Option<Duration>) -> Vec<usize> {
    wait_impl(conns, timeout, false).unwrap_or_default()
}

/// [`wait`] that also ends when an interrupt is pending (see `shmring::signal::Interrupt`):
/// `Err(Interrupted)` when no connection is ready and the flag is raised (checked before
/// each sleep, and every 50 ms while asleep).
pub fn wait_interruptible(conns: &[&SocketConnection], timeout: Option<Duration>) -> Result<Vec<usize>, Interrupted> {
    wait_impl(conns, timeout, true)
}

fn wait_impl(
    conns: &[&SocketConnection],
    timeout: Option<Duration>,
    interruptible: bool,
) -> Result<Vec<usize>, Interrupted> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let fds: Vec<FdWatch<'_>> = conns
        .iter()
        .map(|c| FdWatch {
            fd: c.as_fd(),
            events: libc::POLLIN | libc::POLLRDHUP,
            buffered: c.transport.buffered_ready(),
        })
        .collect();
    fd::wait(&fds, deadline, interruptible)
}
