//! Python's `subprocess` pattern (feed a child's stdin, read its stdout) mixed with
//! shmring channels handed to a worker process:
//!
//! ```sh
//! cargo run --example subprocess -- 1000
//! ```
//!
//! 1. start `sort` with piped stdin and stdout, as
//!    `Popen(["sort"], stdin=PIPE, stdout=PIPE)` would;
//! 2. start a worker `Process` (this program re-executed, running the registered entry
//!    "tally") and hand it, by descriptor inheritance, a `Queue` to read lines from and
//!    one end of a `Pipe` to answer on;
//! 3. feed `sort` N shuffled words from a thread, pass each line `sort` prints on to
//!    the worker through the queue, and receive the worker's summary through the pipe;
//! 4. check the summary: every word arrived, in order.

use shmring::process::{self, Process};
use shmring::{Connection, Queue, handoff, pipe};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// What the worker reports: lines seen, whether they were sorted, total bytes.
type Summary = (u64, bool, u64);

/// The worker: read lines from the inherited queue until `None`, answer on the pipe.
fn tally(_args: &[String]) -> i32 {
    let run = || -> Result<(), Box<dyn std::error::Error>> {
        let mut lines: Queue<Option<String>> = handoff::from_env("lines")?;
        let mut answer: Connection = handoff::from_env("answer")?;
        let (mut n, mut sorted, mut bytes, mut prev) = (0u64, true, 0u64, String::new());
        while let Some(line) = lines.get()? {
            sorted &= prev <= line;
            n += 1;
            bytes += line.len() as u64;
            prev = line;
        }
        answer.send(&(n, sorted, bytes))?;
        Ok(())
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("tally: {e}");
            1
        }
    }
}

/// Word `i` of a deterministic shuffle of `n` words.
fn word(i: u64, n: u64) -> String {
    // i -> i * k mod n with k coprime to n: a permutation.
    let k = (1..).map(|k| 7919 * k + 1).find(|k| gcd(*k, n) == 1).unwrap_or(1);
    format!("word-{:06}", (i * k) % n)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    process::run_if_child(&[("tally", tally)]); // a child stops here
    let n: u64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(1000);

    // 1. The subprocess, as Popen(["sort"], stdin=PIPE, stdout=PIPE).
    let mut sort = Command::new("sort")
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;

    // 2. The worker, with a queue and a pipe end handed down by inheritance.
    let mut lines: Queue<Option<String>> = Queue::new(256)?;
    let (mut answer, theirs) = pipe(true)?;
    let mut worker = Process::new("tally")
        .pass("lines", lines.try_clone()?)?
        .pass("answer", theirs)?
        .die_with_parent(true);
    worker.start()?;

    // 3. Feed sort's stdin from a thread (a full stdout pipe must not block the
    //    feeding), read its stdout here and pass each line on.
    let mut stdin = sort.stdin.take().expect("piped stdin");
    let feeder = std::thread::spawn(move || -> std::io::Result<()> {
        for i in 0..n {
            writeln!(stdin, "{}", word(i, n))?;
        }
        Ok(()) // dropping stdin closes it: sort sees EOF and prints
    });
    let mut bytes = 0u64;
    for line in BufReader::new(sort.stdout.take().expect("piped stdout")).lines() {
        let line = line?;
        bytes += line.len() as u64;
        lines.put(&Some(line))?;
    }
    lines.put(&None)?;
    feeder.join().expect("feeder thread")?;
    let status = sort.wait()?;
    if !status.success() {
        return Err(format!("sort: {status}").into());
    }

    // 4. The worker's summary, through the pipe.
    let (count, sorted, total): Summary = answer.recv()?;
    let code = worker.join()?;
    let pid = worker.pid().unwrap_or(0);
    println!("sort -> queue -> worker {pid}: {count} lines, sorted: {sorted}, {total} bytes");
    if code != 0 || count != n || !sorted || total != bytes {
        return Err(format!("worker exit {code}, {count}/{n} lines, sorted {sorted}, {total}/{bytes} bytes").into());
    }
    Ok(())
}
