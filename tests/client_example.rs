//! The `client` example against the `demo` example, both as built: lines
//! typed on the client's standard input come back from the demo's echo
//! endpoint and are printed, and the end of the input closes cleanly.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Builds the examples and returns the path of `name`.
fn example(name: &str) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", "client", "--example", "demo"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the examples build");
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("the test's path");
    let profile = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    profile.join("examples").join(name)
}

#[test]
fn lines_typed_into_the_client_come_back_from_the_demo() {
    let client_path = example("client");
    let mut demo = Command::new(example("demo"))
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the demo starts");
    // "demo listening: open http://127.0.0.1:PORT/"
    let mut banner = String::new();
    BufReader::new(demo.stdout.take().expect("piped"))
        .read_line(&mut banner)
        .expect("the demo prints its address");
    let address = banner
        .trim()
        .rsplit("http://")
        .next()
        .expect("an address")
        .trim_end_matches('/')
        .to_owned();
    let mut client = Command::new(client_path)
        .arg(format!("ws://{address}/echo"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the client starts");
    client
        .stdin
        .take()
        .expect("piped")
        .write_all("hello\nwörld, twice: wörld\n".as_bytes())
        .expect("the client reads stdin");
    let out = client.wait_with_output().expect("the client ends");
    let _ = demo.kill();
    let _ = demo.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8(out.stdout).expect("UTF-8"),
        "hello\nwörld, twice: wörld\n"
    );
    assert!(stderr.contains("extension: permessage-deflate"), "{stderr}");
    assert!(stderr.contains("closed: 1000"), "{stderr}");
}
