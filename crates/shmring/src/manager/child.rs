//! The server in a child process ([`Manager::start`]): the child's entry
//! ([`SERVER_ENTRY`]) and the parent's handle on it ([`ManagerProcess`]).

use super::{Manager, ManagerError};
use crate::net::Address;
use crate::process::{Entry, Process};
use std::io::{Read, Write};

/// The line the child prints once it listens, followed by the address.
pub(super) const LISTENING: &str = "shmring-manager listening at ";

/// The entry of the child process of [`Manager::start`]: register it in the program's
/// [`run_if_child`](crate::process::run_if_child) table.
pub const SERVER_ENTRY: (&str, Entry) = ("shmring-manager-server", server_entry);

fn server_entry(args: &[String]) -> i32 {
    let run = || -> Result<(), String> {
        let addr: Address = args
            .first()
            .ok_or("no address argument")?
            .parse()
            .map_err(|e| format!("{e}"))?;
        let mut msg = Vec::new();
        std::io::stdin().read_to_end(&mut msg).map_err(|e| e.to_string())?;
        let key = match msg.split_first() {
            Some((1, key)) => Some(key),
            _ => None,
        };
        let server = Manager::serve(&addr, key).map_err(|e| e.to_string())?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{LISTENING}{}", server.address())
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())?;
        drop(out);
        server.wait();
        Ok(())
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("shmring manager server: {e}");
            println!("failed: {e}");
            1
        }
    }
}

/// A server running in a child process, from [`Manager::start`].
#[derive(Debug)]
pub struct ManagerProcess {
    pub(super) process: Process,
    pub(super) address: Address,
}

impl ManagerProcess {
    /// The address the server listens at (for TCP port 0, the port chosen).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The child's pid.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Stop the server: SIGKILL the child and reap it. Its clients' next calls return
    /// [`ManagerError::ManagerGone`].
    pub fn shutdown(mut self) -> Result<(), ManagerError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), ManagerError> {
        if self.process.is_alive() {
            self.process.kill().map_err(|e| ManagerError::Start(e.to_string()))?;
        }
        self.process
            .join()
            .map(drop)
            .map_err(|e| ManagerError::Start(e.to_string()))
    }
}

impl Drop for ManagerProcess {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
