//! Rings: pure algorithms over a `#[repr(C)]` control block and a byte region, run the
//! same over a shared mapping (processes) and over heap memory (threads, loom).

pub mod broadcast;
#[cfg(not(loom))]
mod copy;
pub mod end;
pub mod mpmc;
pub mod record;
pub mod spsc;

#[cfg(not(loom))]
pub(crate) use copy::copy_bytes;
pub use end::{End, EndKind, Several};
