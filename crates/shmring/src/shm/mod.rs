//! Shared-memory segments: named ones in `/dev/shm` and anonymous ones from `memfd`.
//!
//! Every segment starts with a [`SegmentHeader`]: magic, layout version, kind, total
//! size, the structure's parameters, the creator's identity and an init-state word.
//! The creator writes everything, then publishes READY with a Release store; an opener
//! waits (bounded) for READY with an Acquire load and validates every field against the
//! real size of the file before anything is built on it.
//!
//! Liveness of the parties attached to a segment is carried by open-file-description
//! byte-range locks (see [`liveness`]): the kernel drops them when the last descriptor
//! of the holder closes, including when the holder is killed, and they cannot be fooled
//! by a recycled pid.

mod header;
#[cfg(not(loom))]
pub mod inspect;
pub mod liveness;
mod name;
mod segment;
pub mod sigbus;

pub use header::{HEADER_SIZE, HeaderInfo, LAYOUT_VERSION, MAGIC, SegmentHeader, SegmentKind, flags};
pub use name::validate_name;
pub use segment::{Segment, SegmentOptions, unlink};
