//! How a client connects and waits: [`ConnectOptions`], [`CHANNEL_WAIT`],
//! [`DEFAULT_CALL_TIMEOUT`].

#[cfg(doc)]
use super::{Manager, ManagerError};
use crate::net::NetOptions;
use crate::sync::WaitStrategy;
use std::time::Duration;

/// How both sides of a shared-memory channel wait for the other (the server for the
/// next request, the client for the reply): no busy spin, but up to 50 `sched_yield`s
/// (each a look at the ring), then sleep on the futex. A yield hands the CPU straight
/// to a peer that waits for it, and costs a fraction of a microsecond when the peer
/// runs on another CPU, so the channel stays fast on a machine with fewer free CPUs
/// than busy threads. Measured on this 2-CPU VM (`shmring bench --transports manager
/// --quick`, calls/s, another agent compiling meanwhile), client and server on two
/// CPUs / pinned to one CPU: this strategy 0.9-1.1M set / 86k; 200 spins then 50
/// yields 0.2-1.0M / 39k; 2,000 spins 1.1-1.3M / 6.4k; the pipe's default (20,000
/// spins) 0.75k on one CPU; the socket ~50k / ~50k.
pub const CHANNEL_WAIT: WaitStrategy = WaitStrategy::Adaptive {
    spin: std::time::Duration::ZERO,
    yields: 50,
};

/// How long a proxy call waits for the server's reply before it reports
/// [`ManagerError::ManagerGone`]: 30 s.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How [`Manager::connect_with`] connects.
///
/// ```
/// use shmring::manager::ConnectOptions;
/// use std::time::Duration;
///
/// let o = ConnectOptions::new().shared_memory(false).call_timeout(Duration::from_secs(5));
/// assert!(!o.shared_memory && o.call_timeout == Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// The socket's options (message limit, also the channel's; handshake timeout).
    pub net: NetOptions,
    /// Over a Unix socket, move the calls to a shared-memory channel the server hands
    /// over (default `true`); ignored over TCP.
    pub shared_memory: bool,
    /// How long a call waits for its reply (default [`DEFAULT_CALL_TIMEOUT`]); see
    /// [`Manager::set_timeout`].
    pub call_timeout: Duration,
    /// How this side of the channel waits for a reply (default [`CHANNEL_WAIT`]; the
    /// server's side always waits so).
    pub channel_wait: WaitStrategy,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            net: NetOptions::default(),
            shared_memory: true,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            channel_wait: CHANNEL_WAIT,
        }
    }
}

impl ConnectOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the socket's options.
    pub fn net(mut self, net: NetOptions) -> Self {
        self.net = net;
        self
    }

    /// Use (or not) a shared-memory channel over a Unix socket.
    pub fn shared_memory(mut self, on: bool) -> Self {
        self.shared_memory = on;
        self
    }

    /// Set the call timeout.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Set how this side of the channel waits for a reply.
    pub fn channel_wait(mut self, wait: WaitStrategy) -> Self {
        self.channel_wait = wait;
        self
    }
}
