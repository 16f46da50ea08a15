//! The server against a hostile client of its shared-memory channel: one that writes
//! garbage over the rings it shares with its connection thread.

use super::protocol::{Kind, Reply, Request};
use super::{Manager, ManagerError};
use crate::connection::Connection;
use crate::net::{Address, Client};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Panics of the server's connection threads, counted by a chained panic hook.
static CONN_THREAD_PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_conn_thread_panics() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("shmring-manager-conn"))
        {
            CONN_THREAD_PANICS.fetch_add(1, Ordering::Relaxed);
        }
        prev(info);
    }));
}

/// Where the bytes of a scribble come from.
type Fill = Box<dyn FnMut() -> u8>;

/// Fill the whole of the memfd segment `fd` with bytes from `fill`.
fn scribble(fd: &OwnedFd, mut fill: impl FnMut() -> u8) {
    let len = rustix::fs::fstat(fd).unwrap().st_size as usize;
    let file = std::fs::File::from(fd.try_clone().unwrap());
    // SAFETY: the mapping is only written through here, as bytes; the server maps the
    // same pages and must survive whatever they hold (the point of the test).
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }.unwrap();
    assert_eq!(map.len(), len);
    for b in map.iter_mut() {
        *b = fill();
    }
}

/// A client takes its channel by hand (keeping duplicates of the rings' descriptors),
/// makes one good call over it, then overwrites both rings — all zeros, all ones,
/// random bytes — and then either waits or calls again through its own (ruined) end.
/// The server must not panic and must keep serving another client. Rings of all ones
/// hold a producer position that cannot be (not a multiple of the record alignment),
/// which the server's next liveness look (every 50 ms while it waits) must refuse,
/// closing the connection; the other cases may also look like a stalled client.
#[test]
fn a_client_scribbling_over_its_channel_harms_only_itself() {
    count_conn_thread_panics();
    let addr = Address::Abstract(format!("shmring-test-mgr-scribble-{}", std::process::id()));
    let server = Manager::serve(&addr, None).unwrap();
    let good = Manager::connect(&addr, None).unwrap();
    assert!(good.uses_shared_memory());
    let d = good.dict::<u32, u32>("d").unwrap();
    let mut n = 0u32;
    for call_after in [false, true] {
        let mut rng = fastrand::Rng::with_seed(7);
        let patterns: [(&str, Fill); 3] = [
            ("zeros", Box::new(|| 0)),
            ("ones", Box::new(|| 0xff)),
            ("random", Box::new(move || rng.u8(..))),
        ];
        for (what, mut fill) in patterns {
            // What `Shared::open_channel` does, keeping duplicates of the descriptors.
            let mut conn = Client::connect(&addr, None).unwrap();
            conn.send(&Request::OpenChannel).unwrap();
            let parcel = conn.recv_parcel(Some(Duration::from_secs(5))).unwrap();
            assert!(matches!(
                conn.recv_timeout::<Reply>(Duration::from_secs(5)).unwrap(),
                Reply::Ok
            ));
            let dups: Vec<OwnedFd> = parcel.fds.iter().map(|f| f.try_clone().unwrap()).collect();
            let mut fds = parcel.fds.into_iter();
            let mut pipe = Connection::from_fds(fds.next(), fds.next()).unwrap();
            let open = Request::Open {
                kind: Kind::Dict,
                name: "d".into(),
            };
            pipe.send(&open).unwrap();
            let reply = pipe.recv_timeout::<Reply>(Duration::from_secs(5)).unwrap();
            assert!(matches!(reply, Reply::Opened { .. }), "{reply:?}");
            for fd in &dups {
                scribble(fd, &mut fill);
            }
            // Our end's own checks may refuse the send.
            let sent = call_after.then(|| pipe.send_timeout(&open, Duration::from_secs(1)));
            let t = Instant::now();
            let must_close = what == "ones" && !call_after;
            let closed = conn.recv_bytes_timeout(Duration::from_millis(if must_close { 5000 } else { 300 }));
            eprintln!(
                "{what}, call after: {sent:?}; the server's side of the socket: {:?} after {:?}",
                closed.as_ref().map(Vec::len),
                t.elapsed()
            );
            if must_close {
                assert_eq!(closed, Err(crate::ConnError::Disconnected), "{what}");
            }
            // The other client is served as before.
            n += 1;
            d.insert(&n, &n).unwrap();
            assert_eq!(d.get(&n).unwrap(), Some(n), "{what}");
            assert_eq!(d.len().unwrap(), n as usize, "{what}");
            assert_eq!(
                CONN_THREAD_PANICS.load(Ordering::Relaxed),
                0,
                "{what}: a connection thread panicked"
            );
        }
    }
    server.shutdown();
    assert!(matches!(d.len(), Err(ManagerError::ManagerGone(_))));
}
