//! Client for the Autobahn test suite (`kosoku fuzzingserver`): asks for the
//! case count, runs every case as an echo client, then asks for the reports.
//!
//! `cargo run --release --example autobahn_client -- ws://127.0.0.1:9001 sansproto`
//!
//! `AUTOBAHN_CLIENT_PARALLELISM` sets how many cases run at once (default 2).

use sansproto::ws::{Config, Connection, DeflateConfig, Event, Message};
use std::net::TcpStream;

fn connect(base: &str, path: &str) -> std::io::Result<(TcpStream, Connection)> {
    // Offering client_no_context_takeover lets the server pick either mode.
    let deflate = DeflateConfig::default()
        .with_client_no_context_takeover(true)
        .with_threshold(0);
    sansproto::blocking::connect(
        &format!("{base}{path}"),
        Config::default().with_deflate(deflate),
    )
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let base = base.trim_end_matches('/').to_owned();
    let agent = args.next().unwrap_or_else(|| "sansproto".into());

    let (mut stream, mut conn) = connect(&base, "/getCaseCount")?;
    let mut count = None;
    sansproto::blocking::drive(&mut stream, &mut conn, |_, event| {
        if let Event::Message(Message::Text(t)) = event {
            count = t.as_str().trim().parse::<u32>().ok();
        }
    })?;
    let count = count.ok_or_else(|| std::io::Error::other("no case count received"))?;
    eprintln!("running {count} cases as agent {agent}");

    // Cases are independent connections: run a few at once.
    let workers = std::env::var("AUTOBAHN_CLIENT_PARALLELISM")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(2)
        .max(1);
    let next = std::sync::atomic::AtomicU32::new(1);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let case = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if case > count {
                    break;
                }
                let Ok((mut stream, mut conn)) =
                    connect(&base, &format!("/runCase?case={case}&agent={agent}"))
                else {
                    eprintln!("case {case}: cannot connect");
                    continue;
                };
                let _ = sansproto::blocking::drive(&mut stream, &mut conn, |conn, event| {
                    if let Event::Message(m) = event {
                        let _ = conn.send(m);
                    }
                });
            });
        }
    });

    let (mut stream, mut conn) = connect(&base, &format!("/updateReports?agent={agent}"))?;
    sansproto::blocking::drive(&mut stream, &mut conn, |_, _| {})?;
    eprintln!("reports updated");
    Ok(())
}
