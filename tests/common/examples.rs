//! The examples as built, run as processes: what a user runs is what the
//! tests check.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;

/// Builds the examples `names` (a no-op once built) and returns the path
/// of each.
pub fn build(names: &[&str]) -> Vec<PathBuf> {
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["build", "--quiet"]);
    for name in names {
        cargo.args(["--example", name]);
    }
    assert!(
        cargo.status().expect("cargo runs").success(),
        "{names:?} build"
    );
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("the test's path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    names
        .iter()
        .map(|name| profile.join("examples").join(name))
        .collect()
}

/// Runs example `name` as `name client ADDR` (a seed example's scripted
/// client) to its end and returns what it wrote and how it exited.
pub fn run_client(name: &str, addr: &str) -> std::process::Output {
    Command::new(build(&[name]).remove(0))
        .args(["client", addr])
        .output()
        .expect("the client runs")
}

/// A server example running in the background, killed when dropped. What
/// it writes is read as it comes (so it never blocks on a full pipe).
pub struct Server {
    child: Child,
    /// The address it printed.
    pub address: String,
    /// Everything it writes to standard error after starting.
    log: Option<thread::JoinHandle<String>>,
    drain: Option<thread::JoinHandle<String>>,
}

impl Server {
    /// Starts example `name` with `args` and waits for the line (on
    /// standard output, or standard error when `on_stderr`) that holds
    /// its address after `marker`.
    pub fn start(name: &str, args: &[&str], marker: &str, on_stderr: bool) -> Server {
        let path = build(&[name]).remove(0);
        let mut child = Command::new(path)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the example starts");
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        let mut err = BufReader::new(child.stderr.take().expect("piped"));
        let mut line = String::new();
        let first = if on_stderr {
            &mut err as &mut dyn BufRead
        } else {
            &mut out
        };
        first.read_line(&mut line).expect("a first line");
        let address = line
            .split(marker)
            .nth(1)
            .unwrap_or_else(|| panic!("no {marker:?} in {line:?}"))
            .trim()
            .trim_end_matches('/')
            .to_owned();
        let read_all = |mut r: Box<dyn Read + Send>| {
            thread::spawn(move || {
                let mut all = String::new();
                let _ = r.read_to_string(&mut all);
                all
            })
        };
        Server {
            child,
            address,
            log: Some(read_all(Box::new(err))),
            drain: Some(read_all(Box::new(out))),
        }
    }

    /// Stops it and returns what it wrote to standard error.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = self.drain.take() {
            let _ = d.join();
        }
        self.log
            .take()
            .map(|l| l.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
