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

#[test]
fn the_client_answers_a_close_the_server_starts() {
    use sansproto::{blocking, ws};
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::time::Duration;

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("address"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("the client connects");
        let mut conn = ws::Connection::server(ws::Config::default());
        let _ = blocking::drive(&mut stream, &mut conn, |conn, event| match event {
            ws::Event::Open(_) => {
                let _ = conn.close(ws::CloseCode::NORMAL, "bye");
            }
            ws::Event::Closed(c) => {
                let _ = tx.send((c.code, c.clean));
            }
            _ => {}
        });
    });
    // Standard input stays open: only the server's Close ends the client.
    let mut client = Command::new(build(&["client"]).remove(0))
        .arg(&url)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the client starts");
    let closed = rx.recv_timeout(Duration::from_secs(20));
    let status = client.wait().expect("the client ends");
    assert_eq!(closed, Ok((ws::CloseCode::NORMAL, true)));
    assert!(status.success());
}
