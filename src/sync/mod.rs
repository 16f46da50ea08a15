//! Waiting: shared futexes and the spin -> yield -> futex wait strategy.

pub mod futex;
pub(crate) mod wait;

pub(crate) use wait::{Check, Deadline, Waiter};
pub use wait::{WaitStrategy, WaitWord};
