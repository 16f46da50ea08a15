//! What each source watches: a ring's word, or a descriptor.

use super::sealed::{FdWatch, RingWatch, Sealed, Watch};
use crate::connection::{Connection, PipeTransport};
use crate::net::{Listener, SocketTransport};
use crate::queue::{JoinableQueue, Queue, SimpleQueue};
use crate::ring::{mpmc, spsc};
use crate::sync::WaitWord;
use std::os::fd::AsFd;

impl RingWatch for spsc::Consumer {
    fn ring_word(&self) -> Option<(&WaitWord, bool)> {
        Some(self.data_wait())
    }
    fn ring_ready(&self, check_liveness: bool) -> bool {
        // A mapping poisoned by a peer's resize never gets a record or loses its
        // producer's lock: ready, as a waiting `recv` reports it (`Corrupted`). The
        // check is an fstat at most every liveness interval, the poison flag between.
        self.has_record() || self.producer_gone(check_liveness) || (check_liveness && self.sh.poisoned())
    }
}

impl RingWatch for mpmc::Consumer {
    fn ring_word(&self) -> Option<(&WaitWord, bool)> {
        Some(self.data_wait())
    }
    fn ring_ready(&self, check_liveness: bool) -> bool {
        self.is_ready(check_liveness)
    }
}

impl RingWatch for PipeTransport {
    fn ring_word(&self) -> Option<(&WaitWord, bool)> {
        self.receiver().map(|rx| rx.data_wait())
    }
    fn ring_ready(&self, check_liveness: bool) -> bool {
        self.is_ready(check_liveness)
    }
}

impl Sealed for spsc::Consumer {
    fn watch(&self) -> Watch<'_> {
        Watch::Ring(self)
    }
}

impl Sealed for mpmc::Consumer {
    fn watch(&self) -> Watch<'_> {
        Watch::Ring(self)
    }
}

impl<T> Sealed for Queue<T> {
    fn watch(&self) -> Watch<'_> {
        Watch::Ring(self.engine().consumer())
    }
}

impl<T> Sealed for SimpleQueue<T> {
    fn watch(&self) -> Watch<'_> {
        self.inner().watch()
    }
}

impl<T> Sealed for JoinableQueue<T> {
    fn watch(&self) -> Watch<'_> {
        self.queue().watch()
    }
}

impl Sealed for Connection<PipeTransport> {
    fn watch(&self) -> Watch<'_> {
        Watch::Ring(&self.transport)
    }
}

impl Sealed for Connection<SocketTransport> {
    fn watch(&self) -> Watch<'_> {
        Watch::Fd(FdWatch {
            fd: self.as_fd(),
            events: libc::POLLIN | libc::POLLRDHUP,
            buffered: self.transport.buffered_ready(),
        })
    }
}

impl Sealed for Listener {
    fn watch(&self) -> Watch<'_> {
        Watch::Fd(FdWatch {
            fd: self.as_fd(),
            events: libc::POLLIN,
            buffered: false,
        })
    }
}
