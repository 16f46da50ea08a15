//! What `ticks_producer` and `ticks_consumer` exchange (in a real system, a crate both
//! depend on): a serde type, encoded with postcard by the queue.

use serde::{Deserialize, Serialize};

/// One trade tick. `Schema` gives the queue the type's shape, recorded in the queue and
/// checked by every program that opens it (the `postcard` attribute lets the derive
/// work with only `shmring` as a dependency).
#[derive(Serialize, Deserialize, Debug, shmring::Schema)]
#[postcard(crate = shmring::postcard_schema)]
pub struct Tick {
    pub seq: u64,
    pub symbol: String,
    pub price: f64,
    pub qty: u32,
}

/// The name both programs use: `/dev/shm/shmring-example-ticks`.
pub const NAME: &str = "shmring-example-ticks";
