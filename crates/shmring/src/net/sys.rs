//! System calls on a socket's descriptor that need no connection state: `poll(2)` over
//! one or many sockets, and the `sendmsg(2)` of a handle frame with its descriptors
//! (used by a [`SocketConnection`](super::SocketConnection) and by the Manager's server,
//! which writes to a socket it does not own as a connection).

use super::frame::{HANDLE, HEADER_LEN, header};
use crate::handoff::socket::{CONTROL_LEN, HEADER_LEN as PARCEL_HEADER_LEN, MAX_FDS, encode_header};
use crate::handoff::{HandoffError, Parcel};
use rustix::fd::{AsFd, BorrowedFd};
use rustix::io::Errno;
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sockopt};
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::time::Duration;

/// Write a handle frame carrying `parcel` to the socket `fd`: the frame header and the
/// handoff header in one `sendmsg` with the descriptors (the kernel attaches them to the
/// first byte), a short write finished plainly. Blocking; `MSG_NOSIGNAL`.
pub(crate) fn send_parcel_frame(fd: BorrowedFd<'_>, parcel: &Parcel) -> Result<(), HandoffError> {
    if parcel.fds.len() > MAX_FDS {
        return Err(HandoffError::FdCount {
            expected: MAX_FDS,
            got: parcel.fds.len(),
        });
    }
    // Other sockets drop SCM_RIGHTS silently (TCP): refuse before sending anything.
    if !parcel.fds.is_empty() && sockopt::socket_domain(fd).ok() != Some(rustix::net::AddressFamily::UNIX) {
        return Err(HandoffError::NotTransferable(
            "descriptors travel only over a Unix socket",
        ));
    }
    let mut frame = [0u8; HEADER_LEN + PARCEL_HEADER_LEN];
    frame[..HEADER_LEN].copy_from_slice(&header(HANDLE, PARCEL_HEADER_LEN));
    frame[HEADER_LEN..].copy_from_slice(&encode_header(parcel));
    let fds: Vec<BorrowedFd<'_>> = parcel.fds.iter().map(|f| f.as_fd()).collect();
    let mut space = [MaybeUninit::<u8>::uninit(); CONTROL_LEN];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(HandoffError::Malformed(format!("{} descriptors do not fit", fds.len())));
    }
    let mut sent = 0;
    while sent < frame.len() {
        let r = if sent == 0 {
            rustix::net::sendmsg(fd, &[IoSlice::new(&frame)], &mut control, SendFlags::NOSIGNAL)
        } else {
            rustix::net::send(fd, &frame[sent..], SendFlags::NOSIGNAL)
        };
        match r {
            Ok(n) => sent += n,
            Err(Errno::INTR | Errno::AGAIN) => {}
            Err(Errno::PIPE | Errno::CONNRESET) => return Err(HandoffError::Closed),
            Err(e) => return Err(HandoffError::io("sendmsg", e)),
        }
    }
    Ok(())
}

/// Whether `fd` has one of `events` (or a hang-up or error), waiting at most
/// `timeout`; a signal ends the wait early with `false`.
pub(crate) fn poll_fd(fd: BorrowedFd<'_>, events: i16, timeout: Duration) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut p = [libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    }];
    Ok(poll_fds(&mut p, Some(timeout))? > 0)
}

/// `poll(2)` over `fds`, waiting at most `timeout` (`None`: as long as it takes; zero
/// does not wait): how many have events in their `revents`. A signal ends the wait
/// early with 0.
pub(crate) fn poll_fds(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> std::io::Result<usize> {
    let ms = match timeout {
        None => -1,
        Some(t) if t.is_zero() => 0,
        // Whole milliseconds; a sub-millisecond nap is one (0 would not sleep at all).
        Some(t) => (t.as_millis().min(i32::MAX as u128) as i32).max(1),
    };
    // SAFETY: `fds` is a valid, writable array of `fds.len()` pollfds that lives across
    // the call; the descriptors are the caller's, open for its duration (a closed one
    // is reported in `revents`, not undefined).
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if r >= 0 {
        return Ok(r as usize);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::Interrupted {
        Ok(0)
    } else {
        Err(e)
    }
}
