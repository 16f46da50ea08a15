//! Why an SPSC ring's send or receive did not take place: small, `Copy`, never
//! allocating (the hot path's errors). Re-exported at the crate root.

/// Why a send did not take place. The message stays with the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The ring is full (`try_send` and `claim` only).
    #[error("ring is full")]
    Full,
    /// The timeout passed before space became free.
    #[error("timed out waiting for space")]
    Timeout,
    /// A blocking send found the process-wide interrupt flag raised (see
    /// `shmring::signal::Interrupt`) before space became free. Nothing was sent.
    #[error("interrupted while waiting for space")]
    Interrupted,
    /// The consumer closed its end or died.
    #[error("consumer disconnected")]
    Disconnected,
    /// The message can never fit in this ring.
    #[error("message of {len} bytes exceeds the ring's limit of {max} bytes")]
    MessageTooLarge {
        /// The message's length.
        len: usize,
        /// The largest message this ring accepts.
        max: usize,
    },
    /// The shared indices hold impossible values: the segment was overwritten.
    #[error("ring corrupted: {0}")]
    Corrupted(&'static str),
}

/// Why a receive returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// The ring is empty (`try_recv` and `read` only).
    #[error("ring is empty")]
    Empty,
    /// The timeout passed before a message arrived.
    #[error("timed out waiting for a message")]
    Timeout,
    /// A blocking receive found the process-wide interrupt flag raised (see
    /// `shmring::signal::Interrupt`) while the ring was empty.
    #[error("interrupted while waiting for a message")]
    Interrupted,
    /// The producer closed its end or died, and every message it sent has been received.
    #[error("producer disconnected")]
    Disconnected,
    /// A record header or shared index holds an impossible value.
    #[error("ring corrupted: {0}")]
    Corrupted(&'static str),
}
