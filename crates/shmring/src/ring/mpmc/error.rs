//! Why a push or a pop of the MPMC queue did not take place: small, `Copy`, never
//! allocating.

/// Why a push did not take place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The queue is full (`try_push`, `try_claim`).
    #[error("queue is full")]
    Full,
    /// The timeout passed before a slot became free.
    #[error("timed out waiting for a free slot")]
    Timeout,
    /// A blocking push found the process-wide interrupt flag raised (see
    /// `shmring::signal::Interrupt`) while the queue was full. Nothing was pushed.
    #[error("interrupted while waiting for a free slot")]
    Interrupted,
    /// The queue was closed.
    #[error("queue is closed")]
    Closed,
    /// The message is larger than a slot.
    #[error("message of {len} bytes exceeds the slot size of {max} bytes")]
    MessageTooLarge {
        /// The message's length.
        len: usize,
        /// The slot payload size.
        max: usize,
    },
    /// A slot's sequence word holds an impossible value.
    #[error("queue corrupted: {0}")]
    Corrupted(&'static str),
}

/// Why a pop returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PopError {
    /// The queue is empty (`try_pop`, `try_read`).
    #[error("queue is empty")]
    Empty,
    /// The timeout passed before a message arrived.
    #[error("timed out waiting for a message")]
    Timeout,
    /// A blocking pop found the process-wide interrupt flag raised (see
    /// `shmring::signal::Interrupt`) while the queue was empty.
    #[error("interrupted while waiting for a message")]
    Interrupted,
    /// The queue was closed and every message in it has been taken.
    #[error("queue is closed")]
    Closed,
    /// A message was lost: this consumer skipped a slot whose producer died while
    /// writing it. Reported once per lost message; the next pop goes on.
    #[error("a message was lost: its producer died while writing it")]
    Lost,
    /// A slot's sequence or length word holds an impossible value.
    #[error("queue corrupted: {0}")]
    Corrupted(&'static str),
}
