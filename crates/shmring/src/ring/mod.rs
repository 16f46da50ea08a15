//! Rings: pure algorithms over a `#[repr(C)]` control block and a byte region, run the
//! same over a shared mapping (processes) and over heap memory (threads, loom).

pub(crate) mod layout;
pub mod mpmc;
pub mod record;
pub mod spsc;
