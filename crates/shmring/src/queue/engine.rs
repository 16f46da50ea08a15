//! The untyped queue behind [`Queue`](super::Queue), [`SimpleQueue`](super::SimpleQueue)
//! and [`JoinableQueue`](super::JoinableQueue): one producer and one consumer end of the
//! ring, the queue's id, and the record / side-segment logic.

use super::error::{GetError, PutError};
use super::record::{self, KIND_INLINE, MAX_REF_RECORD, Record, Reference};
use super::{MIN_SLOT_SIZE, QueueConfig, UNBOUNDED_SLOTS, side};
use crate::ring::mpmc::{self, Consumer, Producer, QueueStats};
use crate::shm::{Segment, SegmentKind, SegmentOptions};
use crate::sync::Wait;
use crate::{Error, Result};
use rustix::fd::OwnedFd;
use std::time::Instant;

/// A message taken from the queue: borrowed from the slot buffer (inline) or owned
/// (read from a side segment).
#[derive(Debug)]
pub(crate) enum Got<'a> {
    Slot(&'a [u8]),
    Side(Vec<u8>),
}

impl Got<'_> {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Got::Slot(b) => b,
            Got::Side(v) => v,
        }
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        match self {
            Got::Slot(b) => b.to_vec(),
            Got::Side(v) => v,
        }
    }
}

/// Scratch buffers above this capacity are freed after use (one large message must not
/// pin its size for the handle's lifetime).
const KEEP_SCRATCH: usize = 64 * 1024;

/// One handle's ends of a queue.
#[derive(Debug)]
pub(crate) struct Engine {
    tx: Producer,
    rx: Consumer,
    /// The queue's id (see `record::queue_id`) and its side-segment prefix.
    id: u64,
    prefix: String,
    slot_size: usize,
    max_message: usize,
    /// Permission bits of the side segments this handle creates.
    mode: u32,
    /// The ring's name, `None` if anonymous.
    name: Option<String>,
    opts: QueueConfig,
    /// The record being put (kind byte + payload).
    put_buf: Vec<u8>,
    /// The record last popped.
    get_buf: Vec<u8>,
}

/// The slot count for a Python `maxsize` (0: "unbounded").
fn slots_for(maxsize: usize) -> usize {
    if maxsize == 0 { UNBOUNDED_SLOTS } else { maxsize.max(2) }
}

fn check_config(cfg: &QueueConfig) -> Result<()> {
    if cfg.slot_size < MIN_SLOT_SIZE {
        return Err(Error::InvalidArgument(format!(
            "queue slot size {} is below the minimum of {MIN_SLOT_SIZE} bytes",
            cfg.slot_size
        )));
    }
    Ok(())
}

/// The id of the ring whose header `seg` holds.
fn id_of(seg: &Segment) -> u64 {
    record::queue_id(seg.info())
}

impl Engine {
    fn assemble(tx: Producer, rx: Consumer, id: u64, name: Option<String>, cfg: &QueueConfig) -> Result<Self> {
        let slot_size = tx.slot_size();
        if slot_size < MIN_SLOT_SIZE {
            return Err(Error::InvalidArgument(format!(
                "ring {:?} has slots of {slot_size} bytes, below a queue's minimum of {MIN_SLOT_SIZE}",
                name.as_deref().unwrap_or("<anonymous>")
            )));
        }
        Ok(Engine {
            tx,
            rx,
            id,
            prefix: record::side_prefix(id),
            slot_size,
            max_message: cfg.max_message_size,
            mode: cfg.ring.segment.mode,
            name,
            opts: cfg.clone(),
            put_buf: Vec::new(),
            get_buf: Vec::new(),
        })
    }

    /// A new anonymous queue of `maxsize` messages.
    pub(crate) fn anonymous(maxsize: usize, cfg: &QueueConfig) -> Result<Self> {
        check_config(cfg)?;
        let (tx, rx) = mpmc::channel_with(slots_for(maxsize), cfg.slot_size, &cfg.ring)?;
        // Read the ring's header through the producer's descriptor, then attach again.
        let seg = Segment::from_fd(tx.into_fd(), SegmentKind::MpmcQueue, &SegmentOptions::default())?;
        let id = id_of(&seg);
        let tx = Producer::from_fd_with(seg.into_fd(), &cfg.ring)?;
        Self::assemble(tx, rx, id, None, cfg)
    }

    /// Create the named queue `name`; it is removed when this handle drops.
    pub(crate) fn create(name: &str, maxsize: usize, cfg: &QueueConfig) -> Result<Self> {
        check_config(cfg)?;
        let tx = Producer::create_with(name, slots_for(maxsize), cfg.slot_size, &cfg.ring)?;
        Self::open_rest(tx, name, cfg)
    }

    /// Open the named queue `name`.
    pub(crate) fn open(name: &str, cfg: &QueueConfig) -> Result<Self> {
        let tx = Producer::open_with(name, &cfg.ring)?;
        Self::open_rest(tx, name, cfg)
    }

    fn open_rest(tx: Producer, name: &str, cfg: &QueueConfig) -> Result<Self> {
        let rx = Consumer::open_with(name, &cfg.ring)?;
        let id = id_of(&Segment::open(name, SegmentKind::MpmcQueue, &cfg.ring.segment)?);
        Self::assemble(tx, rx, id, Some(name.to_owned()), cfg)
    }

    /// Attach through a descriptor of the ring (from [`Engine::into_fd`]).
    pub(crate) fn from_fd(fd: OwnedFd, cfg: &QueueConfig) -> Result<Self> {
        let seg = Segment::from_fd(fd, SegmentKind::MpmcQueue, &SegmentOptions::default())?;
        let id = id_of(&seg);
        // The consumer gets an open file description of its own (its liveness locks
        // must be told apart from the producer's).
        let other = seg.reopen()?;
        let tx = Producer::from_fd_with(seg.into_fd(), &cfg.ring)?;
        let rx = Consumer::from_fd_with(other.into_fd(), &cfg.ring)?;
        Self::assemble(tx, rx, id, None, cfg)
    }

    /// Leave the queue; return a descriptor of the ring for [`Engine::from_fd`].
    pub(crate) fn into_fd(self) -> OwnedFd {
        let Engine { tx, rx, .. } = self;
        drop(rx);
        tx.into_fd()
    }

    /// Another handle in this process, with parties of its own.
    pub(crate) fn try_clone(&self) -> Result<Self> {
        Self::assemble(
            self.tx.try_clone()?,
            self.rx.try_clone()?,
            self.id,
            self.name.clone(),
            &self.opts,
        )
    }

    /// This handle's consumer end (for `crate::select`).
    pub(crate) fn consumer(&self) -> &Consumer {
        &self.rx
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    pub(crate) fn slot_size(&self) -> usize {
        self.slot_size
    }
    pub(crate) fn max_message(&self) -> usize {
        self.max_message
    }
    pub(crate) fn capacity(&self) -> usize {
        self.tx.capacity()
    }
    pub(crate) fn len(&self) -> usize {
        self.tx.len()
    }
    pub(crate) fn is_full(&self) -> bool {
        self.tx.is_full()
    }
    pub(crate) fn close(&self) {
        self.tx.close();
    }
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
    pub(crate) fn stats(&self) -> QueueStats {
        self.tx.stats()
    }

    /// Put `payload` (raw bytes).
    pub(crate) fn put_bytes(&mut self, payload: &[u8], wait: Wait) -> Result<(), PutError> {
        self.check_size(payload.len())?;
        let mut buf = std::mem::take(&mut self.put_buf);
        buf.clear();
        let r = if payload.len() < self.slot_size {
            buf.push(KIND_INLINE);
            buf.extend_from_slice(payload);
            self.push(&buf, wait)
        } else {
            self.put_large(payload, wait)
        };
        self.put_buf = buf;
        r
    }

    /// Put the encoding of `value`.
    pub(crate) fn put_value<T: serde::Serialize + ?Sized>(&mut self, value: &T, wait: Wait) -> Result<(), PutError> {
        let mut buf = std::mem::take(&mut self.put_buf);
        // One pass for a message that fits a slot: encode into a buffer of the slot's
        // size (kept at that length between puts, so not zeroed each time), without
        // counting the length first.
        if buf.len() < self.slot_size {
            buf.resize(self.slot_size, 0);
        }
        buf[0] = KIND_INLINE;
        if let Ok(n) = crate::codec::encode_to_slice(value, &mut buf[1..self.slot_size]) {
            let r = if n > self.max_message {
                Err(PutError::MessageTooLarge {
                    len: n,
                    max: self.max_message,
                })
            } else {
                self.push(&buf[..1 + n], wait)
            };
            self.put_buf = buf;
            return r;
        }
        // Larger than a slot (or an encoding error, which the exact pass reports).
        buf.clear();
        buf.push(KIND_INLINE);
        let r = match crate::codec::encode(value, &mut buf) {
            Err(e) => Err(e.into()),
            Ok(()) if buf.len() - 1 > self.max_message => Err(PutError::MessageTooLarge {
                len: buf.len() - 1,
                max: self.max_message,
            }),
            Ok(()) if buf.len() <= self.slot_size => self.push(&buf, wait),
            Ok(()) => self.put_large(&buf[1..], wait),
        };
        if buf.capacity() > KEEP_SCRATCH {
            buf = Vec::new();
        }
        self.put_buf = buf;
        r
    }

    fn check_size(&self, len: usize) -> Result<(), PutError> {
        if len > self.max_message {
            return Err(PutError::MessageTooLarge {
                len,
                max: self.max_message,
            });
        }
        Ok(())
    }

    /// Push one record.
    fn push(&mut self, rec: &[u8], wait: Wait) -> Result<(), PutError> {
        let r = match wait {
            Wait::Now => self.tx.try_push(rec),
            Wait::Forever => self.tx.push(rec),
            Wait::Until(d) => self.tx.push_timeout(rec, d.saturating_duration_since(Instant::now())),
        };
        r.map_err(PutError::from)
    }

    /// Put a message through a side segment.
    fn put_large(&mut self, payload: &[u8], wait: Wait) -> Result<(), PutError> {
        self.check_size(payload.len())?;
        // Cheap early outs before writing the whole message (the push decides).
        if self.tx.is_closed() {
            return Err(PutError::Closed);
        }
        if matches!(wait, Wait::Now) && self.tx.is_full() {
            return Err(PutError::Full);
        }
        let (name, checksum) = side::write(&self.prefix, self.id, payload, self.mode).map_err(PutError::SideSegment)?;
        let mut rec = [0u8; MAX_REF_RECORD];
        let n = record::encode_reference(
            &Reference {
                name: &name,
                len: payload.len() as u64,
                checksum,
            },
            &mut rec,
        );
        let r = self.push(&rec[..n], wait);
        if r.is_err() {
            side::discard(&name);
        }
        r
    }

    /// Take the next message.
    pub(crate) fn get(&mut self, wait: Wait) -> Result<Got<'_>, GetError> {
        match wait {
            Wait::Now => self.get_buf = self.rx.try_pop()?,
            Wait::Forever => {
                self.rx.pop_into(&mut self.get_buf)?;
            }
            Wait::Until(d) => self.get_buf = self.rx.pop_timeout(d.saturating_duration_since(Instant::now()))?,
        }
        match record::parse(&self.get_buf, &self.prefix, self.max_message as u64) {
            Ok(Record::Inline(b)) => Ok(Got::Slot(b)),
            Ok(Record::Reference(r)) => {
                let mut out = Vec::new();
                side::read(&r, self.id, &mut out)?;
                Ok(Got::Side(out))
            }
            Err(e) => {
                // A reference to one of our side segments that is unusable (too large):
                // remove the segment, its message cannot be delivered.
                if let super::BadReference::TooLarge { .. } = e {
                    if let Some(name) = reference_name(&self.get_buf, &self.prefix) {
                        side::discard(name);
                    }
                }
                Err(e.into())
            }
        }
    }

    /// Take the next message and decode it as a `T`.
    pub(crate) fn get_value<T: serde::de::DeserializeOwned>(&mut self, wait: Wait) -> Result<T, GetError> {
        let got = self.get(wait)?;
        let v = crate::codec::decode(got.bytes());
        drop(got);
        if self.get_buf.capacity() > KEEP_SCRATCH {
            self.get_buf = Vec::new();
        }
        Ok(v?)
    }
}

/// The side-segment name of a reference record whose only fault is its length.
fn reference_name<'a>(rec: &'a [u8], prefix: &str) -> Option<&'a str> {
    // Parse again with no length limit: only the length check failed.
    match record::parse(rec, prefix, u64::MAX) {
        Ok(Record::Reference(r)) => Some(r.name),
        _ => None,
    }
}
