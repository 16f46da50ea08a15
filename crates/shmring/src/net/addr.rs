//! [`Address`]: where a [`Listener`](super::Listener) listens and a
//! [`Client`](super::Client) connects — a Unix socket path, a Linux abstract name, or a
//! TCP `host:port`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A socket address, written as text:
///
/// | text | address |
/// | --- | --- |
/// | `/run/app.sock`, `./app.sock`, `../x.sock`, `unix:app.sock` | Unix socket path |
/// | `@app`, `unix:@app` | Linux abstract name `app` (no file; gone with the listener) |
/// | `127.0.0.1:5000`, `localhost:0`, `[::1]:5000`, `tcp:host:port` | TCP |
///
/// [`Display`](fmt::Display) writes the form `FromStr` reads back (`unix:` before a
/// relative path, brackets around an IPv6 host). TCP hosts are resolved when binding or
/// connecting; port 0 binds a free port ([`Listener::local_addr`](super::Listener::local_addr)
/// tells which).
///
/// ```
/// use shmring::net::Address;
/// use std::path::Path;
///
/// let a: Address = "/tmp/app.sock".parse()?;
/// assert_eq!(a, Address::from(Path::new("/tmp/app.sock")));
/// assert_eq!("@app".parse::<Address>()?, Address::Abstract("app".into()));
/// let t: Address = "127.0.0.1:0".parse()?;
/// assert_eq!(t, Address::from("127.0.0.1:0".parse::<std::net::SocketAddr>()?));
/// assert_eq!(t.to_string(), "127.0.0.1:0");
/// assert_eq!("unix:x.sock".parse::<Address>()?.to_string(), "unix:x.sock");
/// assert!("nonsense".parse::<Address>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Address {
    /// A Unix domain socket at this path (a socket file the listener creates).
    Unix(PathBuf),
    /// A Linux abstract Unix socket name (bytes after the leading NUL; no file).
    Abstract(String),
    /// A TCP address: a host name or IP literal (without brackets) and a port.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// Port; 0 to bind a free one.
        port: u16,
    },
}

/// Why a string is not an [`Address`].
///
/// ```
/// let e = "no-port".parse::<shmring::net::Address>().unwrap_err();
/// assert!(e.to_string().contains("no-port"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid socket address {text:?}: {reason}")]
pub struct AddressParseError {
    text: String,
    reason: &'static str,
}

impl FromStr for Address {
    type Err = AddressParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| AddressParseError {
            text: s.to_owned(),
            reason,
        };
        if let Some(rest) = s.strip_prefix("unix:") {
            return match rest.strip_prefix('@') {
                Some(name) => Ok(Address::Abstract(name.to_owned())),
                None if rest.is_empty() => Err(err("empty socket path")),
                None => Ok(Address::Unix(rest.into())),
            };
        }
        if let Some(name) = s.strip_prefix('@') {
            return Ok(Address::Abstract(name.to_owned()));
        }
        if s.starts_with('/') || s.starts_with("./") || s.starts_with("../") {
            return Ok(Address::Unix(s.into()));
        }
        let hp = s.strip_prefix("tcp:").unwrap_or(s);
        let Some((host, port)) = hp.rsplit_once(':') else {
            return Err(err("expected a path (/..., ./..., unix:...), @name, or host:port"));
        };
        let port = port
            .parse::<u16>()
            .map_err(|_| err("the port is not a number 0-65535"))?;
        let host = match host.strip_prefix('[') {
            Some(h) => h.strip_suffix(']').ok_or_else(|| err("unclosed '[' around the host"))?,
            None if host.contains(':') => return Err(err("write an IPv6 host in brackets: [::1]:port")),
            None => host,
        };
        if host.is_empty() {
            return Err(err("empty host"));
        }
        Ok(Address::Tcp {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => {
                let s = p.to_string_lossy();
                if s.starts_with('/') || s.starts_with("./") || s.starts_with("../") {
                    f.write_str(&s)
                } else {
                    write!(f, "unix:{s}")
                }
            }
            Address::Abstract(name) => write!(f, "@{name}"),
            Address::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl From<&Path> for Address {
    fn from(p: &Path) -> Self {
        Address::Unix(p.to_owned())
    }
}

impl From<PathBuf> for Address {
    fn from(p: PathBuf) -> Self {
        Address::Unix(p)
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Self {
        Address::Tcp {
            host: a.ip().to_string(),
            port: a.port(),
        }
    }
}

impl TryFrom<&str> for Address {
    type Error = AddressParseError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips() {
        for s in [
            "/a/b.sock",
            "./x",
            "../y",
            "unix:rel.sock",
            "@name",
            "@",
            "127.0.0.1:80",
            "localhost:0",
            "[::1]:9",
        ] {
            let a: Address = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
            assert_eq!(a.to_string().parse::<Address>().unwrap(), a);
        }
        assert_eq!("unix:@n".parse::<Address>().unwrap(), Address::Abstract("n".into()));
        assert_eq!(
            "tcp:h:1".parse::<Address>().unwrap(),
            Address::Tcp {
                host: "h".into(),
                port: 1
            }
        );
        for bad in ["", "x", "h:70000", ":5", "::1:5", "[::1:5", "unix:", "h:p"] {
            assert!(bad.parse::<Address>().is_err(), "{bad:?} parsed");
        }
    }
}
