//! Why a broadcast send or receive did not take place: small, `Copy`, never allocating.

/// Why a publish did not take place. The message stays with the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Lossless policy: the slowest live subscriber has not read the space the message
    /// needs (`try_send` and `try_claim` only).
    #[error("ring is full (a live subscriber is behind)")]
    Full,
    /// The timeout passed before space became free.
    #[error("timed out waiting for space")]
    Timeout,
    /// A blocking send found the process-wide interrupt flag raised before space
    /// became free. Nothing was sent.
    #[error("interrupted while waiting for space")]
    Interrupted,
    /// The message can never fit in this ring.
    #[error("message of {len} bytes exceeds the ring's limit of {max} bytes")]
    MessageTooLarge {
        /// The message's length.
        len: usize,
        /// The largest message this ring accepts.
        max: usize,
    },
    /// A shared index or record header holds an impossible value: the segment was
    /// overwritten.
    #[error("broadcast ring corrupted: {0}")]
    Corrupted(&'static str),
}

/// Why a receive returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// Nothing new (`try_recv` and `try_read` only).
    #[error("no new message")]
    Empty,
    /// The timeout passed before a message arrived.
    #[error("timed out waiting for a message")]
    Timeout,
    /// A blocking receive found the process-wide interrupt flag raised.
    #[error("interrupted while waiting for a message")]
    Interrupted,
    /// The publisher closed its end or died, and every message it published has been
    /// received. Not final: a new publisher attaching to the ring continues the stream,
    /// and the next receive returns its messages.
    #[error("publisher disconnected")]
    Disconnected,
    /// Overwrite policy: the publisher overwrote `missed` messages this subscriber had
    /// not read (as tokio's broadcast `Lagged`). The subscriber now stands at the
    /// oldest message still in the ring, which the next receive returns.
    #[error("lagged: {missed} messages were overwritten before they were read")]
    Lagged {
        /// How many messages were lost to this subscriber.
        missed: u64,
    },
    /// A shared index or record header holds an impossible value.
    #[error("broadcast ring corrupted: {0}")]
    Corrupted(&'static str),
}
