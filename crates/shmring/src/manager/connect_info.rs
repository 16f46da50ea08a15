//! [`ConnectInfo`]: what [`Manager::connect`] needs (the address and the authkey), as
//! one value that travels to a child [`Process`](crate::process::Process) or over a
//! Unix socket like any shmring object ([`Handoff`]).
//!
//! Python hands a child a manager's proxies as arguments: pickled, each carries the
//! address, and the child's authkey is inherited from its parent. Here the child gets a
//! `ConnectInfo` and connects itself, as its own client (its own connection, so the
//! locks it takes are its own).
//!
//! In transit the address and the key are the contents of a sealed memfd (never argv or
//! the environment, which other users can read through `/proc`): the descriptor is
//! private to the processes it is given to.

use super::{ConnectOptions, Manager, ManagerError};
use crate::handoff::{Handoff, HandoffError, Kind, Parcel};
use crate::net::Address;
use rustix::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

/// The first bytes of a [`ConnectInfo`]'s memfd.
const MAGIC: &[u8; 8] = b"SHMRMGR1";
/// Address tags in the memfd: a Unix socket path (raw bytes), or the address's text.
const TAG_PATH: u8 = 0;
const TAG_TEXT: u8 = 1;
/// The largest contents a receiver accepts (an address and a key are far smaller).
const MAX_LEN: u64 = 64 * 1024;

/// Where a manager listens and the key it asks for: what [`Manager::connect`] needs,
/// handed to another process as a [`Handoff`] (to a child with
/// [`Process::pass`](crate::process::Process::pass), over a socket with
/// [`handoff::send`](crate::handoff::send)). [`Manager::connect_info`] gives that of a
/// connected handle; [`ConnectInfo::new`] makes one.
///
/// ```
/// use shmring::handoff::Handoff;
/// use shmring::manager::{ConnectInfo, Manager};
///
/// let addr = format!("@shmring-doc-info-{}", std::process::id()).parse()?;
/// let _server = Manager::serve(&addr, Some(b"key"))?;
/// let info = ConnectInfo::new(addr, Some(b"key"));
/// // What a child rebuilds from the descriptor it inherited:
/// let theirs = ConnectInfo::from_parcel(info.into_parcel()?)?;
/// let m = theirs.connect()?;
/// m.list::<u8>("l")?.push(&1)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ConnectInfo {
    address: Address,
    authkey: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for ConnectInfo {
    /// The address, and the key's length only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectInfo")
            .field("address", &self.address)
            .field(
                "authkey",
                &self.authkey.as_ref().map(|k| format!("<{} bytes>", k.len())),
            )
            .finish()
    }
}

impl ConnectInfo {
    /// The manager at `address`, with `authkey` (`None`: a server without a key).
    pub fn new(address: Address, authkey: Option<&[u8]>) -> Self {
        ConnectInfo {
            address,
            authkey: authkey.map(Arc::from),
        }
    }

    pub(super) fn from_parts(address: Address, authkey: Option<Arc<[u8]>>) -> Self {
        ConnectInfo { address, authkey }
    }

    /// The server's address.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The authkey.
    pub fn authkey(&self) -> Option<&[u8]> {
        self.authkey.as_deref()
    }

    /// [`Manager::connect`] to this address with this key.
    pub fn connect(&self) -> Result<Manager, ManagerError> {
        Manager::connect(&self.address, self.authkey())
    }

    /// [`Manager::connect_with`] to this address with this key.
    pub fn connect_with(&self, opts: &ConnectOptions) -> Result<Manager, ManagerError> {
        Manager::connect_with(&self.address, self.authkey(), opts)
    }

    /// The memfd contents: magic, address (tag, u32 length, bytes), key (u8 present,
    /// u32 length, bytes); lengths little-endian.
    fn encode(&self) -> Result<Vec<u8>, HandoffError> {
        let (tag, addr): (u8, Vec<u8>) = match &self.address {
            Address::Unix(p) => (TAG_PATH, p.as_os_str().as_bytes().to_vec()),
            a => (TAG_TEXT, a.to_string().into_bytes()),
        };
        let key = self.authkey().unwrap_or_default();
        let mut out = Vec::with_capacity(MAGIC.len() + 10 + addr.len() + key.len());
        out.extend_from_slice(MAGIC);
        out.push(tag);
        out.extend_from_slice(&len32(addr.len())?.to_le_bytes());
        out.extend_from_slice(&addr);
        out.push(u8::from(self.authkey.is_some()));
        out.extend_from_slice(&len32(key.len())?.to_le_bytes());
        out.extend_from_slice(key);
        if out.len() as u64 > MAX_LEN {
            return Err(HandoffError::NotTransferable("a manager address and key over 64 KiB"));
        }
        Ok(out)
    }

    /// Parse the contents written by [`encode`](Self::encode); every length is checked
    /// against the bytes present (the sender is not trusted).
    fn decode(b: &[u8]) -> Result<Self, HandoffError> {
        let bad = |what: &str| HandoffError::Malformed(format!("manager connect info: {what}"));
        let mut r = Reader(b);
        if r.take(MAGIC.len()).ok_or_else(|| bad("too short"))? != MAGIC {
            return Err(bad("bad magic"));
        }
        let tag = r.byte().ok_or_else(|| bad("no address"))?;
        let addr = r.chunk().ok_or_else(|| bad("address length past the end"))?;
        let address = match tag {
            TAG_PATH => Address::Unix(std::ffi::OsStr::from_bytes(addr).into()),
            TAG_TEXT => std::str::from_utf8(addr)
                .map_err(|_| bad("address not UTF-8"))?
                .parse()
                .map_err(|e| bad(&format!("{e}")))?,
            t => return Err(bad(&format!("unknown address tag {t}"))),
        };
        let has_key = r.byte().ok_or_else(|| bad("no key flag"))?;
        let key = r.chunk().ok_or_else(|| bad("key length past the end"))?;
        if !r.0.is_empty() {
            return Err(bad("trailing bytes"));
        }
        let authkey = match has_key {
            0 if key.is_empty() => None,
            1 => Some(Arc::from(key)),
            _ => return Err(bad("bad key flag")),
        };
        Ok(ConnectInfo { address, authkey })
    }
}

fn len32(n: usize) -> Result<u32, HandoffError> {
    u32::try_from(n).map_err(|_| HandoffError::NotTransferable("a manager address or key over 4 GiB"))
}

/// A cursor over untrusted bytes: every read checks the length.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// A u32 length, then that many bytes.
    fn chunk(&mut self) -> Option<&'a [u8]> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        self.take(usize::try_from(n).ok()?)
    }
}

/// The address and key travel as the contents of a memfd, sealed against any change
/// (metadata: the contents' length).
impl Handoff for ConnectInfo {
    const KIND: Kind = Kind::ManagerConnectInfo;

    fn into_parcel(self) -> Result<Parcel, HandoffError> {
        use rustix::fs::{MemfdFlags, SealFlags};
        let bytes = self.encode()?;
        let fd = rustix::fs::memfd_create(
            "shmring-manager-connect-info",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )
        .map_err(|e| HandoffError::io("memfd_create", e))?;
        let mut off = 0;
        while off < bytes.len() {
            off += rustix::io::pwrite(&fd, &bytes[off..], off as u64).map_err(|e| HandoffError::io("pwrite", e))?;
        }
        rustix::fs::fcntl_add_seals(
            &fd,
            SealFlags::WRITE | SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
        )
        .map_err(|e| HandoffError::io("fcntl(F_ADD_SEALS)", e))?;
        Ok(Parcel {
            kind: Kind::ManagerConnectInfo,
            meta: bytes.len() as u64,
            fds: vec![fd],
        })
    }

    fn from_parcel(p: Parcel) -> Result<Self, HandoffError> {
        let (len, mut fds) = p.expect::<Self>(1)?;
        let fd: OwnedFd = fds.pop().ok_or(HandoffError::FdCount { expected: 1, got: 0 })?;
        if len > MAX_LEN {
            return Err(HandoffError::Malformed(format!("manager connect info of {len} bytes")));
        }
        let size = rustix::fs::fstat(&fd)
            .map_err(|e| HandoffError::io("fstat", e))?
            .st_size;
        if u64::try_from(size).ok() != Some(len) {
            return Err(HandoffError::Malformed(format!(
                "manager connect info: the file holds {size} bytes, the parcel says {len}"
            )));
        }
        let mut buf = vec![0u8; len as usize];
        let mut off = 0;
        while off < buf.len() {
            match rustix::io::pread(&fd, &mut buf[off..], off as u64) {
                Ok(0) => return Err(HandoffError::Truncated("manager connect info shorter than its size")),
                Ok(n) => off += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(HandoffError::io("pread", e)),
            }
        }
        Self::decode(&buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trip(i: ConnectInfo) -> ConnectInfo {
        ConnectInfo::from_parcel(i.into_parcel().unwrap()).unwrap()
    }

    #[test]
    fn every_address_form_and_key_survive_a_parcel() {
        for (addr, key) in [
            ("@shmring-abstract", Some(&b"k\0ey"[..])),
            ("/tmp/some dir/m.sock", None),
            ("unix:rel.sock", Some(&b""[..])),
            ("127.0.0.1:4000", Some(&[0xff; 300][..])),
            ("[::1]:0", None),
        ] {
            let a: Address = addr.parse().unwrap();
            let got = trip(ConnectInfo::new(a.clone(), key));
            assert_eq!((got.address(), got.authkey()), (&a, key), "{addr}");
        }
    }

    #[test]
    fn the_key_is_not_in_debug_output() {
        let i = ConnectInfo::new("@x".parse().unwrap(), Some(b"hunter2"));
        let d = format!("{i:?}");
        assert!(d.contains("<7 bytes>") && !d.contains("hunter2"), "{d}");
    }

    #[test]
    fn malformed_contents_are_refused() {
        let good = ConnectInfo::new("@x".parse().unwrap(), Some(b"key")).encode().unwrap();
        assert!(ConnectInfo::decode(&good).is_ok());
        for cut in 0..good.len() {
            assert!(ConnectInfo::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(ConnectInfo::decode(&long).is_err());
        let mut huge = good.clone();
        huge[9..13].copy_from_slice(&u32::MAX.to_le_bytes()); // address length
        assert!(ConnectInfo::decode(&huge).is_err());
        let mut flag = good;
        let at = flag.len() - 3 - 4 - 1;
        flag[at] = 2;
        assert!(ConnectInfo::decode(&flag).is_err());
        // A parcel whose size disagrees with the file.
        let mut p = ConnectInfo::new("@x".parse().unwrap(), None).into_parcel().unwrap();
        p.meta += 1;
        assert!(matches!(ConnectInfo::from_parcel(p), Err(HandoffError::Malformed(_))));
        // Another kind of object.
        let p = crate::sync::Event::anonymous().unwrap().into_parcel().unwrap();
        assert!(matches!(
            ConnectInfo::from_parcel(p),
            Err(HandoffError::WrongKind { .. })
        ));
    }
}
