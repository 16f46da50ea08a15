//! [`Handoff`] for every shmring object that lives in descriptors, through each type's
//! own `into_fd(s)` / `from_fd(s)` (or `AsFd` and a duplicate, for the primitives whose
//! handles have no `into_fd`).

use super::{Handoff, HandoffError, Kind, Parcel};
use crate::connection::Connection;
use crate::queue::{JoinableQueue, Queue, SimpleQueue};
use crate::ring::{End, EndKind};
#[cfg(test)]
use crate::ring::{mpmc, spsc};
use crate::shm::Shape;
use crate::shm::{Segment, SegmentKind, SegmentOptions};
use crate::sync::handle::{Kind as SharedKind, Shared};
use postcard_schema::Schema;
use rustix::fd::{AsFd, OwnedFd};

/// A duplicate of `x`'s descriptor (same open file description), then `x` dropped.
fn dup_of<T: AsFd>(x: T) -> Result<OwnedFd, HandoffError> {
    x.as_fd().try_clone_to_owned().map_err(|e| HandoffError::io("dup", e))
}

fn one(kind: Kind, meta: u64, fd: OwnedFd) -> Parcel {
    Parcel {
        kind,
        meta,
        fds: vec![fd],
    }
}

/// The single descriptor of a parcel checked to hold one.
fn single<T: Handoff>(p: Parcel) -> Result<(u64, OwnedFd), HandoffError> {
    let (meta, mut fds) = p.expect::<T>(1)?;
    Ok((meta, fds.pop().expect("one descriptor")))
}

/// The fingerprint of a queue's message type, in its parcel's metadata (for tools; the
/// check reads the type record of the segment).
fn fingerprint<T: Schema>() -> u64 {
    Shape::of::<T>().fingerprint()
}

/// An attach error, with a type mismatch told as [`HandoffError::WrongType`].
pub(super) fn attach_error(kind: Kind, e: crate::Error) -> HandoffError {
    match e {
        crate::Error::WrongType {
            created, opened, why, ..
        } => HandoffError::WrongType {
            kind,
            created,
            opened,
            why,
        },
        e => HandoffError::Attach(e),
    }
}

impl Handoff for Connection {
    const KIND: Kind = Kind::Connection;

    fn into_parcel(self) -> Result<Parcel, HandoffError> {
        let (rx, tx) = self.into_fds();
        let meta = u64::from(rx.is_some()) | (u64::from(tx.is_some()) << 1);
        Ok(Parcel {
            kind: Kind::Connection,
            meta,
            fds: rx.into_iter().chain(tx).collect(),
        })
    }

    fn from_parcel(p: Parcel) -> Result<Self, HandoffError> {
        let n = (p.meta & 1) as usize + ((p.meta >> 1) & 1) as usize;
        if p.meta > 3 {
            return Err(HandoffError::Malformed(format!("connection metadata {:#x}", p.meta)));
        }
        let (meta, fds) = p.expect::<Self>(n)?;
        let mut it = fds.into_iter();
        let rx = if meta & 1 != 0 { it.next() } else { None };
        let tx = if meta & 2 != 0 { it.next() } else { None };
        Ok(Connection::from_fds(rx, tx)?)
    }
}

impl<T: Schema> Handoff for Queue<T> {
    const KIND: Kind = Kind::Queue;

    fn into_parcel(self) -> Result<Parcel, HandoffError> {
        Ok(one(Kind::Queue, fingerprint::<T>(), self.into_fd()))
    }

    fn from_parcel(p: Parcel) -> Result<Self, HandoffError> {
        let (_, fd) = single::<Self>(p)?;
        Queue::from_fd(fd).map_err(|e| attach_error(Kind::Queue, e))
    }
}

impl<T: Schema> Handoff for SimpleQueue<T> {
    const KIND: Kind = Kind::SimpleQueue;

    fn into_parcel(self) -> Result<Parcel, HandoffError> {
        Ok(one(Kind::SimpleQueue, fingerprint::<T>(), self.into_fd()))
    }

    fn from_parcel(p: Parcel) -> Result<Self, HandoffError> {
        let (_, fd) = single::<Self>(p)?;
        SimpleQueue::from_fd(fd).map_err(|e| attach_error(Kind::SimpleQueue, e))
    }
}

impl<T: Schema> Handoff for JoinableQueue<T> {
    const KIND: Kind = Kind::JoinableQueue;

    fn into_parcel(self) -> Result<Parcel, HandoffError> {
        let (queue, tasks) = self.into_fds()?;
        Ok(Parcel {
            kind: Kind::JoinableQueue,
            meta: fingerprint::<T>(),
            fds: vec![queue, tasks],
        })
    }

    fn from_parcel(p: Parcel) -> Result<Self, HandoffError> {
        let (_, fds) = p.expect::<Self>(2)?;
        let [queue, tasks]: [OwnedFd; 2] = fds.try_into().expect("two descriptors");
        JoinableQueue::from_fds(queue, tasks).map_err(|e| attach_error(Kind::JoinableQueue, e))
    }
}

/// Every ring end ([`End`] over its kind): the end leaves its role in transit (or its
/// party) and its descriptor travels; `from_fd` claims the role again on arrival. An
/// end of an in-process (heap) ring has no descriptor and is refused.
impl<K: EndKind> Handoff for End<K> {
    const KIND: Kind = K::HANDOFF;

    fn into_parcel(self) -> Result<Parcel, HandoffError> {
        let fd = self.take_fd().ok_or(HandoffError::NotTransferable(
            "an in-process (heap) ring has no descriptor",
        ))?;
        Ok(one(K::HANDOFF, 0, fd))
    }

    fn from_parcel(p: Parcel) -> Result<Self, HandoffError> {
        let (_, fd) = single::<Self>(p)?;
        Ok(End::from_fd(fd)?)
    }
}

impl Handoff for Segment {
    const KIND: Kind = Kind::Segment;

    fn into_parcel(self) -> Result<Parcel, HandoffError> {
        let kind = u64::from(self.info().kind);
        Ok(one(Kind::Segment, kind, self.into_fd()))
    }

    /// Maps the segment with default [`SegmentOptions`], expecting the segment kind
    /// the sender's header had (validated again against the file).
    fn from_parcel(p: Parcel) -> Result<Self, HandoffError> {
        let (meta, fd) = single::<Self>(p)?;
        let kind = u32::try_from(meta)
            .ok()
            .and_then(SegmentKind::from_u32)
            .ok_or_else(|| HandoffError::Malformed(format!("unknown segment kind {meta}")))?;
        Ok(Segment::from_fd(fd, kind, &SegmentOptions::default())?)
    }
}

/// Every primitive of `sync` ([`Shared`] over its kind): a duplicate of its descriptor
/// travels; `from_fd` checks the segment kind, the parameters and, for typed ones, the
/// shape of `T` against the creator's ([`HandoffError::WrongType`]).
impl<K: SharedKind> Handoff for Shared<K> {
    const KIND: Kind = K::HANDOFF;

    fn into_parcel(self) -> Result<Parcel, HandoffError> {
        Ok(one(K::HANDOFF, 0, dup_of(self)?))
    }

    fn from_parcel(p: Parcel) -> Result<Self, HandoffError> {
        let (_, fd) = single::<Self>(p)?;
        Shared::from_fd(fd).map_err(|e| attach_error(K::HANDOFF, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::pipe;
    use crate::sync::{Barrier, BoundedSemaphore, Condition, Event, Mutex, RLock, Semaphore};
    use crate::value::{Array, RawArray, RawValue, Value};

    fn trip<T: Handoff>(x: T) -> T {
        T::from_parcel(x.into_parcel().unwrap()).unwrap()
    }

    #[test]
    fn every_kind_survives_a_parcel_round_trip() {
        let (mut a, b) = pipe(true).unwrap();
        let mut b = trip(b);
        a.send(&1u32).unwrap();
        assert_eq!(b.recv::<u32>().unwrap(), 1);
        b.send(&2u32).unwrap();
        assert_eq!(a.recv::<u32>().unwrap(), 2);

        let (rx, tx) = pipe(false).unwrap(); // Python order: (reader, writer)
        let (mut tx, mut rx) = (trip(tx), trip(rx));
        tx.send(&"one way").unwrap();
        assert_eq!(rx.recv::<String>().unwrap(), "one way");

        let mut q = trip(Queue::<u64>::new(4).unwrap());
        q.put(&9).unwrap();
        assert_eq!(q.get().unwrap(), 9);
        let mut sq = trip(SimpleQueue::<u8>::new().unwrap());
        sq.put(&3).unwrap();
        assert_eq!(sq.get().unwrap(), 3);
        let mut jq = trip(JoinableQueue::<u8>::new(4).unwrap());
        jq.put(&4).unwrap();
        assert_eq!(jq.get().unwrap(), 4);
        jq.task_done().unwrap();

        let (p, c) = spsc::channel(4096).unwrap();
        let (mut p, mut c) = (trip(p), trip(c));
        p.send(b"ring").unwrap();
        assert_eq!(c.recv().unwrap(), b"ring");

        let v = Value::<u64>::anonymous(5).unwrap();
        let v2 = trip(v.try_clone().unwrap());
        v2.store(6);
        assert_eq!(v.load(), 6);
        let e = Event::anonymous().unwrap();
        trip(e.try_clone().unwrap()).set();
        assert!(e.is_set());
        let m = trip(Mutex::<u32>::anonymous(8).unwrap());
        assert_eq!(m.get(), 8);

        let (p, c) = mpmc::channel(8, 64).unwrap();
        let (mut p, mut c) = (trip(p), trip(c));
        p.push(b"slot").unwrap();
        assert_eq!(c.pop().unwrap(), b"slot");

        let a = trip(Array::<u16>::anonymous(&[1, 2, 3]).unwrap());
        assert_eq!((a.len(), a.get(2).unwrap()), (3, 3));
        let ra = trip(RawArray::<u16>::anonymous(&[4]).unwrap());
        assert_eq!(ra.load(0).unwrap(), 4);
        let rv = trip(RawValue::<u32>::anonymous(11).unwrap());
        assert_eq!(rv.load(), 11);
        let s = trip(Semaphore::anonymous(1).unwrap());
        s.try_acquire().unwrap();
        let bs = trip(BoundedSemaphore::anonymous(1).unwrap());
        bs.try_acquire().unwrap();
        let r = trip(RLock::anonymous().unwrap());
        drop(r.try_lock().unwrap());
        let cv = trip(Condition::<u8>::anonymous(2).unwrap());
        assert_eq!(*cv.lock().unwrap(), 2);
        let b = trip(Barrier::anonymous(3).unwrap());
        assert_eq!(b.parties(), 3);

        // A bare segment: its kind travels in the metadata and is checked on arrival.
        let e = Event::anonymous().unwrap();
        let seg = Segment::from_fd(
            e.as_fd().try_clone_to_owned().unwrap(),
            SegmentKind::Event,
            &Default::default(),
        )
        .unwrap();
        let seg = trip(seg);
        assert_eq!(seg.info().kind, SegmentKind::Event as u32);
        let mut p = seg.into_parcel().unwrap();
        p.meta = SegmentKind::Mutex as u64;
        assert!(matches!(Segment::from_parcel(p), Err(HandoffError::Attach(_))));
    }

    #[test]
    fn wrong_kind_and_wrong_type_are_refused() {
        let p = Queue::<u64>::new(4).unwrap().into_parcel().unwrap();
        assert!(matches!(
            Queue::<String>::from_parcel(p),
            Err(HandoffError::WrongType { kind: Kind::Queue, .. })
        ));
        let p = Value::anonymous(1u32).unwrap().into_parcel().unwrap();
        match Value::<i32>::from_parcel(p) {
            Err(HandoffError::WrongType {
                kind: Kind::Value,
                created,
                opened,
                why,
            }) => assert_eq!(
                (created.as_str(), opened.as_str(), why.as_str()),
                ("u32 (4 bytes, align 4)", "i32 (4 bytes, align 4)", "different types")
            ),
            r => panic!("a Value<u32> received as a Value<i32>: {r:?}"),
        }
        let p = Queue::<u64>::new(4).unwrap().into_parcel().unwrap();
        assert!(matches!(
            spsc::Consumer::from_parcel(p),
            Err(HandoffError::WrongKind {
                expected: Kind::SpscConsumer,
                found: Kind::Queue
            })
        ));
        let mut p = Queue::<u64>::new(4).unwrap().into_parcel().unwrap();
        p.fds.clear();
        assert!(matches!(
            Queue::<u64>::from_parcel(p),
            Err(HandoffError::FdCount { expected: 1, got: 0 })
        ));
    }

    #[test]
    fn in_process_ring_is_not_transferable() {
        let (p, _c) = spsc::local_channel(4096, crate::WaitStrategy::default()).unwrap();
        assert!(matches!(p.into_parcel(), Err(HandoffError::NotTransferable(_))));
    }
}
