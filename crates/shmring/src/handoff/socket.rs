//! Parcels over a connected Unix stream socket: one `sendmsg` with a 24-byte header and
//! the descriptors as `SCM_RIGHTS`; a receiver that trusts nothing in the header beyond
//! its own buffer.
//!
//! Header (little-endian):
//!
//! | bytes  | field    | meaning                                    |
//! |--------|----------|--------------------------------------------|
//! | 0..4   | magic    | [`MAGIC`]                                  |
//! | 4..6   | version  | [`VERSION`]                                |
//! | 6..8   | kind     | [`Kind`] number                            |
//! | 8..16  | meta     | [`Parcel::meta`]                           |
//! | 16..20 | nfds     | number of descriptors sent with the header |
//! | 20..24 | reserved | zero                                       |
//!
//! On a stream socket the kernel attaches the descriptors to the header's first byte
//! and never merges that segment with data from another `sendmsg`, so one `recvmsg` of
//! [`HEADER_LEN`] bytes returns the header with exactly its descriptors.

use super::{Handoff, HandoffError, Kind, Parcel};
use crate::sync::interrupt;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags,
};
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

/// First four bytes of every handoff message: `b"SHMH"`.
pub const MAGIC: [u8; 4] = *b"SHMH";
/// Version of the message layout this build writes and reads.
pub const VERSION: u16 = 1;
/// Length of the header that carries the descriptors.
pub const HEADER_LEN: usize = 24;
/// The most descriptors one parcel may carry (the largest object needs 2); a message
/// with more arrives with its control data truncated and is refused.
pub const MAX_FDS: usize = 8;

/// Send `item` over the connected Unix stream socket `sock` (its descriptors as
/// `SCM_RIGHTS`); the peer rebuilds it with [`recv`]. The local handle is consumed
/// (hand over a `try_clone()` to keep one).
///
/// See the [module documentation](super) for an example.
pub fn send<T: Handoff>(sock: impl AsFd, item: T) -> Result<(), HandoffError> {
    send_parcel(sock, &item.into_parcel()?)
}

/// Receive a `T` sent with [`send`] on `sock`, waiting at most `timeout` (`None`:
/// without limit) for the message to start. A parcel of another kind is
/// [`HandoffError::WrongKind`] (its descriptors are closed).
pub fn recv<T: Handoff>(sock: impl AsFd, timeout: Option<Duration>) -> Result<T, HandoffError> {
    T::from_parcel(recv_parcel(sock, timeout)?)
}

/// The header of `parcel` (also the payload of a socket connection's handle frame,
/// `net::conn`).
pub(crate) fn encode_header(parcel: &Parcel) -> [u8; HEADER_LEN] {
    let mut hdr = [0u8; HEADER_LEN];
    hdr[0..4].copy_from_slice(&MAGIC);
    hdr[4..6].copy_from_slice(&VERSION.to_le_bytes());
    hdr[6..8].copy_from_slice(&(parcel.kind as u16).to_le_bytes());
    hdr[8..16].copy_from_slice(&parcel.meta.to_le_bytes());
    hdr[16..20].copy_from_slice(&(parcel.fds.len() as u32).to_le_bytes());
    hdr
}

/// Send a parcel: the header and its descriptors in one `sendmsg` (`MSG_NOSIGNAL`: a
/// closed peer is an error, not `SIGPIPE`).
///
/// ```
/// use shmring::handoff::{self, Kind, Parcel};
/// use std::os::unix::net::UnixStream;
/// let (a, b) = UnixStream::pair()?;
/// let fd = std::fs::File::open("/dev/null")?.into();
/// handoff::send_parcel(&a, &Parcel { kind: Kind::Segment, meta: 42, fds: vec![fd] })?;
/// let p = handoff::recv_parcel(&b, None)?;
/// assert_eq!((p.kind, p.meta, p.fds.len()), (Kind::Segment, 42, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn send_parcel(sock: impl AsFd, parcel: &Parcel) -> Result<(), HandoffError> {
    let sock = sock.as_fd();
    let hdr = encode_header(parcel);
    let fds: Vec<BorrowedFd<'_>> = parcel.fds.iter().map(|f| f.as_fd()).collect();
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len().max(1)))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(HandoffError::Malformed(format!(
            "{} descriptors do not fit the control buffer",
            fds.len()
        )));
    }
    let sent = loop {
        match rustix::net::sendmsg(sock, &[IoSlice::new(&hdr)], &mut control, SendFlags::NOSIGNAL) {
            Ok(n) => break n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(HandoffError::io("sendmsg", e)),
        }
    };
    // The descriptors went with the first byte; finish a (rare) short write plainly.
    let mut off = sent;
    while off < HEADER_LEN {
        match rustix::net::send(sock, &hdr[off..], SendFlags::NOSIGNAL) {
            Ok(n) => off += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(HandoffError::io("send", e)),
        }
    }
    Ok(())
}

/// Receive one parcel (any kind) from `sock`, accepting up to [`MAX_FDS`] descriptors.
pub fn recv_parcel(sock: impl AsFd, timeout: Option<Duration>) -> Result<Parcel, HandoffError> {
    recv_parcel_max(sock, timeout, MAX_FDS)
}

/// [`recv_parcel`] with room for only `max_fds` descriptors (at most [`MAX_FDS`]): a
/// message carrying more arrives with truncated control data and is refused with
/// [`HandoffError::Truncated`], every descriptor of it closed.
pub fn recv_parcel_max(sock: impl AsFd, timeout: Option<Duration>, max_fds: usize) -> Result<Parcel, HandoffError> {
    let sock = sock.as_fd();
    let max_fds = max_fds.min(MAX_FDS);
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut hdr = [0u8; HEADER_LEN];
    // An aligned buffer cut to exactly CMSG_SPACE(max_fds descriptors), so that the
    // kernel truncates (MSG_CTRUNC) any message with more than fit.
    let mut space = ControlSpace([MaybeUninit::uninit(); CONTROL_LEN]);
    let room = if max_fds == 0 { 0 } else { cmsg_room(max_fds) };
    let mut control = RecvAncillaryBuffer::new(&mut space.0[..room]);
    let msg = loop {
        wait_readable(sock, deadline)?;
        match rustix::net::recvmsg(
            sock,
            &mut [IoSliceMut::new(&mut hdr)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
        ) {
            Ok(m) => break m,
            Err(Errno::INTR | Errno::AGAIN) => continue,
            Err(e) => return Err(HandoffError::io("recvmsg", e)),
        }
    };
    // Take ownership of every descriptor that arrived before looking at anything else,
    // so that each error path below closes them (by dropping `fds`).
    let mut fds: Vec<OwnedFd> = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(it) = m {
            fds.extend(it);
        }
    }
    // CMSG_SPACE rounds up to 8 bytes: room for an odd max_fds takes one more.
    if msg.flags.contains(ReturnFlags::CTRUNC) || fds.len() > max_fds {
        return Err(HandoffError::Truncated(
            "control data (more descriptors than the receiver accepts)",
        ));
    }
    if msg.bytes == 0 {
        return Err(if fds.is_empty() {
            HandoffError::Closed
        } else {
            HandoffError::Truncated("descriptors without a header")
        });
    }
    let mut got = msg.bytes.min(HEADER_LEN);
    while got < HEADER_LEN {
        wait_readable(sock, deadline)?;
        // A plain recv: descriptors attached to later bytes would belong to another
        // message; the kernel closes them when no control buffer is given.
        match rustix::net::recv(sock, &mut hdr[got..], RecvFlags::DONTWAIT) {
            Ok((0, _)) => return Err(HandoffError::Truncated("the peer closed the socket mid-header")),
            Ok((n, _)) => got += n,
            Err(Errno::INTR | Errno::AGAIN) => continue,
            Err(e) => return Err(HandoffError::io("recv", e)),
        }
    }
    parse(&hdr, fds, max_fds)
}

/// `CMSG_SPACE` of `n` descriptors: an aligned `cmsghdr` and the aligned data.
const fn cmsg_room(n: usize) -> usize {
    let a = std::mem::align_of::<libc::cmsghdr>();
    std::mem::size_of::<libc::cmsghdr>().next_multiple_of(a)
        + (n * std::mem::size_of::<libc::c_int>()).next_multiple_of(a)
}

pub(crate) const CONTROL_LEN: usize = cmsg_room(MAX_FDS);

/// Receive control buffer, aligned for `cmsghdr` so that no byte is lost to alignment.
#[repr(C, align(8))]
pub(crate) struct ControlSpace(pub(crate) [MaybeUninit<u8>; CONTROL_LEN]);

const _: () = assert!(std::mem::align_of::<libc::cmsghdr>() <= 8);

/// Check a received header against what arrived; never trust its counts beyond `max_fds`.
pub(crate) fn parse(hdr: &[u8; HEADER_LEN], fds: Vec<OwnedFd>, max_fds: usize) -> Result<Parcel, HandoffError> {
    let word = |r: std::ops::Range<usize>| -> u64 {
        let mut b = [0u8; 8];
        b[..r.len()].copy_from_slice(&hdr[r]);
        u64::from_le_bytes(b)
    };
    if hdr[0..4] != MAGIC {
        return Err(HandoffError::Malformed(format!("bad magic {:02x?}", &hdr[0..4])));
    }
    let version = word(4..6);
    if version != u64::from(VERSION) {
        return Err(HandoffError::Malformed(format!(
            "version {version}; this build reads {VERSION}"
        )));
    }
    let raw_kind = word(6..8) as u16;
    let kind = Kind::from_u16(raw_kind).ok_or_else(|| HandoffError::Malformed(format!("unknown kind {raw_kind}")))?;
    let meta = word(8..16);
    let nfds = word(16..20);
    if word(20..24) != 0 {
        return Err(HandoffError::Malformed("reserved field is not zero".into()));
    }
    if nfds > max_fds as u64 {
        return Err(HandoffError::FdCount {
            expected: max_fds,
            got: fds.len(),
        });
    }
    if nfds != fds.len() as u64 {
        return Err(HandoffError::FdCount {
            expected: nfds as usize,
            got: fds.len(),
        });
    }
    Ok(Parcel { kind, meta, fds })
}

/// Wait until `fd` is readable (or hung up), at most until `deadline`.
fn wait_readable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<(), HandoffError> {
    loop {
        let ms: i32 = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(HandoffError::Timeout);
                }
                // Round up so that a sub-millisecond remainder still sleeps.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            }
        };
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid, writable pollfd and the count is 1; `fd` is open
        // for the duration of the call (borrowed).
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r > 0 {
            return Ok(());
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(HandoffError::io("poll", e));
            }
            if interrupt::pending() {
                return Err(HandoffError::Interrupted);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn devnull() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn parcel_round_trip_keeps_kind_meta_and_fds() {
        let (a, b) = UnixStream::pair().unwrap();
        let p = Parcel {
            kind: Kind::Connection,
            meta: 0xdead_beef_0123,
            fds: vec![devnull(), devnull()],
        };
        send_parcel(&a, &p).unwrap();
        let q = recv_parcel(&b, Some(Duration::from_secs(5))).unwrap();
        assert_eq!((q.kind, q.meta, q.fds.len()), (Kind::Connection, 0xdead_beef_0123, 2));
        for f in &q.fds {
            let fl = rustix::io::fcntl_getfd(f).unwrap();
            assert!(fl.contains(rustix::io::FdFlags::CLOEXEC), "received without CLOEXEC");
        }
    }

    #[test]
    fn garbage_and_short_messages_are_errors() {
        let (a, b) = UnixStream::pair().unwrap();
        rustix::net::send(&a, &[0u8; HEADER_LEN], SendFlags::empty()).unwrap();
        assert!(matches!(recv_parcel(&b, None), Err(HandoffError::Malformed(_))));
        rustix::net::send(&a, &MAGIC, SendFlags::empty()).unwrap();
        drop(a);
        assert!(matches!(recv_parcel(&b, None), Err(HandoffError::Truncated(_))));
        assert!(matches!(recv_parcel(&b, None), Err(HandoffError::Closed)));
    }

    #[test]
    fn header_count_must_match_the_descriptors() {
        let (a, b) = UnixStream::pair().unwrap();
        // A header that claims 3 descriptors, sent with 1.
        let fd = devnull();
        let fds = [fd.as_fd()];
        let mut hdr = [0u8; HEADER_LEN];
        hdr[0..4].copy_from_slice(&MAGIC);
        hdr[4..6].copy_from_slice(&VERSION.to_le_bytes());
        hdr[6..8].copy_from_slice(&(Kind::Queue as u16).to_le_bytes());
        hdr[16..20].copy_from_slice(&3u32.to_le_bytes());
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
        rustix::net::sendmsg(&a, &[IoSlice::new(&hdr)], &mut control, SendFlags::empty()).unwrap();
        assert!(matches!(
            recv_parcel(&b, None),
            Err(HandoffError::FdCount { expected: 3, got: 1 })
        ));
    }

    #[test]
    fn timeout_when_nothing_arrives() {
        let (_a, b) = UnixStream::pair().unwrap();
        let t = Instant::now();
        assert!(matches!(
            recv_parcel(&b, Some(Duration::from_millis(20))),
            Err(HandoffError::Timeout)
        ));
        eprintln!("timed out after {:?}", t.elapsed());
    }
}
