//! `shmring`: the command-line tool of the shmring crate.
//!
//! Today it has one subcommand, `shmring bench`, which measures the SPSC ring against a
//! Unix domain socket and a pipe, next to two physical references (see [`cli::bench`]).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, missing_debug_implementations)]

mod cli;

fn main() {
    std::process::exit(cli::main());
}
