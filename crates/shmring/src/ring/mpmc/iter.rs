//! Iterators over an MPMC [`Consumer`]'s messages (see [`crate::iter`]): they end when
//! the queue is closed and drained. A producer that drops or dies does not close the
//! queue (there may be others): call `close`.
//!
//! ```
//! let (mut tx, mut rx) = shmring::ring::mpmc::channel(8, 64)?;
//! tx.push(b"a")?;
//! tx.push(b"b")?;
//! assert_eq!(rx.try_iter().count(), 2);
//! tx.push(b"c")?;
//! tx.close();
//! let rest: Vec<Vec<u8>> = rx.iter().collect::<Result<_, _>>()?;
//! assert_eq!(rest, [b"c".to_vec()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::{Consumer, PopError};
use crate::iter::{Step, iter_methods, sealed::Sealed};

impl Sealed<()> for Consumer {
    type Item = Vec<u8>;
    type Error = PopError;
    fn recv_blocking(&mut self) -> Result<Vec<u8>, PopError> {
        self.pop()
    }
    fn recv_now(&mut self) -> Result<Vec<u8>, PopError> {
        self.try_pop()
    }
    fn step(e: &PopError) -> Step {
        match e {
            PopError::Closed => Step::End,
            PopError::Empty | PopError::Timeout => Step::Empty,
            // One message lost; the next pop goes on.
            PopError::Lost => Step::Yield,
            PopError::Interrupted | PopError::Corrupted(_) => Step::YieldEnd,
        }
    }
}

iter_methods!(impl[] Consumer);
