//! `shmring`: the command-line tool of the shmring crate.
//!
//! Subcommands: `ls`, `stat`, `rm`, `gc` (see and clean up what lives in `/dev/shm`),
//! `create`, `send`, `recv` (make rings from the shell and bridge them to stdin/stdout),
//! and `bench` (the cross-process benchmark against sockets, pipes and Python; see
//! [`cli::bench`]).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, missing_debug_implementations)]

mod cli;

fn main() {
    std::process::exit(cli::main());
}
