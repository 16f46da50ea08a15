//! Iterators over an SPSC [`Consumer`]'s messages (see [`crate::iter`]): they end when
//! the producer is gone and every message it published was read.
//!
//! ```
//! let (mut tx, mut rx) = shmring::ring::spsc::channel(4096)?;
//! let t = std::thread::spawn(move || {
//!     for i in 0..3u8 {
//!         tx.send(&[i]).unwrap();
//!     }
//! }); // the producer drops here
//! let got: Vec<Vec<u8>> = rx.iter().collect::<Result<_, _>>()?;
//! assert_eq!(got, [[0], [1], [2]]);
//! t.join().unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::{Consumer, RecvError};
use crate::iter::{Step, iter_methods, sealed::Sealed};

impl Sealed<()> for Consumer {
    type Item = Vec<u8>;
    type Error = RecvError;
    fn recv_blocking(&mut self) -> Result<Vec<u8>, RecvError> {
        self.recv()
    }
    fn recv_now(&mut self) -> Result<Vec<u8>, RecvError> {
        self.try_recv()
    }
    fn step(e: &RecvError) -> Step {
        match e {
            RecvError::Disconnected => Step::End,
            RecvError::Empty | RecvError::Timeout => Step::Empty,
            // Interrupted asks the loop to stop; Corrupted repeats.
            RecvError::Interrupted | RecvError::Corrupted(_) => Step::YieldEnd,
        }
    }
}

iter_methods!(impl[] Consumer);
