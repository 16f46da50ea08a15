//! Entry points of the fuzz targets in `fuzz/`, compiled only for them (`--cfg fuzzing`,
//! which cargo-fuzz sets) and for this crate's own tests, which replay each target's
//! seed corpus on stable ([`corpus`]). Not part of the API: a user's build has none of
//! this.
//!
//! - [`broadcast_image`]: arbitrary bytes as a broadcast ring segment, read by a
//!   subscriber, then a publisher's round trip (`broadcast.rs`);
//! - [`segment_image`]: arbitrary bytes as an SPSC ring segment, opened and drained
//!   (`segment.rs`);
//! - [`mpmc_ops`]: random operation sequences on an MPMC queue, checked against a model
//!   (`mpmc.rs`);
//! - [`mpmc_image`]: arbitrary bytes as an MPMC queue segment, opened and driven with
//!   non-waiting and timed calls (`mpmc_image.rs`);
//! - [`frames`]: a pipe connection's frame reassembler and the codec (`frames.rs`);
//! - [`net_frames`], [`net_handshake`]: a socket connection's frame reader and both sides
//!   of the authkey handshake (`net.rs`);
//! - [`sync_image`]: the state words of a sync object or a Value/Array overwritten with
//!   arbitrary bytes, reopened and driven with timed calls (`sync.rs`).

pub(crate) mod broadcast;
#[cfg(test)]
mod corpus;
mod frames;
mod image;
mod mpmc;
mod mpmc_image;
mod net;
mod segment;
mod sync;

pub use broadcast::{broadcast_image, broadcast_repair, broadcast_valid_image};
pub use frames::frames;
pub use mpmc::mpmc_ops;
pub use mpmc_image::{IMAGE_SLOTS, MpmcField, mpmc_field, mpmc_image, mpmc_patch, valid_mpmc_image};
pub use net::{net_frames, net_handshake};
pub use segment::{Field, field, patch, repair, segment_image, valid_image};
pub use sync::{KINDS, sync_image};
