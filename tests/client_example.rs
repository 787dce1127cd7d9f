//! The `client` example against the `demo` example, both as built: lines
//! typed on the client's standard input come back from the demo's echo
//! endpoint and are printed, and the end of the input closes cleanly.

mod common;

use common::examples::{build, Server};
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn lines_typed_into_the_client_come_back_from_the_demo() {
    // "demo listening: open http://127.0.0.1:PORT/"
    let demo = Server::start("demo", &["127.0.0.1:0"], "http://", false);
    let address = demo.address.clone();
    let mut client = Command::new(build(&["client"]).remove(0))
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
    drop(demo);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8(out.stdout).expect("UTF-8"),
        "hello\nwörld, twice: wörld\n"
    );
    assert!(stderr.contains("extension: permessage-deflate"), "{stderr}");
    assert!(stderr.contains("closed: 1000"), "{stderr}");
}
