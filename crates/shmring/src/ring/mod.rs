//! Rings: pure algorithms over a `#[repr(C)]` control block and a byte region, run the
//! same over a shared mapping (processes) and over heap memory (threads, loom).

mod backing;
pub mod broadcast;
#[cfg(not(loom))]
mod copy;
pub mod end;
pub mod mpmc;
pub mod record;
#[cfg(not(loom))]
pub(crate) mod region;
mod send;
pub mod spsc;

#[cfg(not(loom))]
pub(crate) use copy::copy_bytes;
pub use end::{End, EndKind, Several};
pub(crate) use send::byte_send_methods;

/// The capacity and message limit of a byte ring (SPSC or broadcast) as its segment
/// header states them (`params[0]`, `params[1]`), checked: the capacity is a power of
/// two in `min..=max`, and the limit is the one `max_message` gives for it. Written
/// once for both rings; each checks the rest of its own parameters and the area size.
#[cfg(not(loom))]
pub(crate) fn checked_capacity(
    params: &[u64; 8],
    min: usize,
    max: usize,
    max_message: fn(usize) -> usize,
) -> std::result::Result<(u64, u64), String> {
    let cap = params[0];
    if !cap.is_power_of_two() || cap < min as u64 || cap > max as u64 {
        return Err(format!(
            "ring capacity {cap} is not a power of two in {min}..=2^{}",
            max.trailing_zeros()
        ));
    }
    let max_msg = max_message(cap as usize) as u64;
    if params[1] != max_msg {
        return Err(format!("message limit {} is not {max_msg}", params[1]));
    }
    Ok((cap, max_msg))
}

/// What building a ring on a segment is under loom, whose atomics cannot live in a
/// mapping: an error (the models use their rings' `loom_channel`).
#[cfg(loom)]
pub(crate) fn not_modelled(seg: &crate::shm::Segment) -> crate::Error {
    crate::Error::InvalidArgument(format!(
        "segment {:?}: shared segments are not modelled under loom; use loom_channel",
        seg.display_name()
    ))
}
