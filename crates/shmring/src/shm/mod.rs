//! Shared-memory segments: named ones in `/dev/shm` and anonymous ones from `memfd`.
//!
//! Every segment starts with a [`SegmentHeader`]: magic, layout version, kind, total
//! size, the structure's parameters, the creator's identity and an init-state word.
//! The creator writes everything, then publishes READY with a Release store; an opener
//! waits (bounded) for READY with an Acquire load and validates every field against the
//! real size of the file before anything is built on it. A typed object's segment
//! also records the shape of its type after the header ([`shape`]), checked at every
//! open.
//!
//! Files are untrusted too (see `file.rs`): every open of a named segment uses
//! `O_NOFOLLOW | O_NONBLOCK` and accepts only a regular file
//! ([`Error::NotARegularFile`](crate::Error::NotARegularFile) at once otherwise); a
//! creator unlinks its name on drop only if the name still refers to the file it
//! created (device and inode compared just before the unlink; the remaining window is
//! the microseconds between that `lstat` and the `unlink`). A creator holds the
//! [`liveness::INIT_SLOT`] lock from right after it creates the file until READY, and
//! stamps its pid, start time and creation time into the header before anything else;
//! an opener that finds the file not READY, that lock free and the file unchanged for
//! a short grace (250 ms) knows no live process is initializing it and returns
//! [`Error::NoLiveCreator`](crate::Error::NoLiveCreator) instead of waiting for the
//! whole open timeout.
//!
//! Liveness of the parties attached to a segment is carried by open-file-description
//! byte-range locks (see [`liveness`]): the kernel drops them when the last descriptor
//! of the holder closes, including when the holder is killed, and they cannot be fooled
//! by a recycled pid.

mod file;
pub mod find;
mod header;
mod init;
#[cfg(not(loom))]
pub mod inspect;
pub mod liveness;
mod name;
mod segment;
pub mod shape;
pub mod sigbus;

pub use find::{open_or_create, open_wait};
pub use header::{HEADER_SIZE, HeaderInfo, LAYOUT_VERSION, MAGIC, SegmentHeader, SegmentKind, flags};
pub use name::validate_name;
pub use segment::{Segment, SegmentOptions, unlink};
pub use shape::{RENDERING_MAX, Shape, TYPE_RECORD_SIZE};
