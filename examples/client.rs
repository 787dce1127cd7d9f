//! A command-line WebSocket client (a small websocat): each line read from
//! standard input goes out as a text message, each message received is
//! printed, and the end of the input closes the connection.
//!
//! ```text
//! cargo run --example client -- ws://HOST[:PORT]/PATH [--proxy http://[user:pass@]host:port] [--header K:V]... [--protocol P]...
//! ```
//!
//! Try it against the demo: `cargo run --example demo`, then
//! `cargo run --example client -- ws://127.0.0.1:8080/echo`.

use sansproto::blocking::{feed, linger_close, read_timeout};
use sansproto::ws::proxy::{ProxiedClient, ProxiedEvent, ProxyEvent};
use sansproto::ws::{CloseCode, Config, DeflateConfig, Event, Message};
use sansproto::Driver;
use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

/// How often standard input is looked at while the socket is quiet.
const STDIN_POLL: Duration = Duration::from_millis(20);

/// What the loop needs from a client, direct or through a proxy.
trait Client: Driver {
    fn send_line(&mut self, line: String);
    fn close_normally(&mut self);
    /// The connection's own event, if `event` is one.
    fn ws_event(event: Self::Event) -> Option<Event>;
}

impl Client for sansproto::ws::Connection {
    fn send_line(&mut self, line: String) {
        if let Err(e) = self.send_text(line) {
            eprintln!("not sent: {e}");
        }
    }
    fn close_normally(&mut self) {
        let _ = self.close(CloseCode::NORMAL, "end of input");
    }
    fn ws_event(event: Event) -> Option<Event> {
        Some(event)
    }
}

impl Client for ProxiedClient {
    fn send_line(&mut self, line: String) {
        if let Err(e) = self.send_text(line) {
            eprintln!("not sent: {e}");
        }
    }
    fn close_normally(&mut self) {
        let _ = self.close(CloseCode::NORMAL, "end of input");
    }
    fn ws_event(event: ProxiedEvent) -> Option<Event> {
        match event {
            ProxiedEvent::Ws(event) => Some(event),
            ProxiedEvent::Proxy(ProxyEvent::Refused(r)) => {
                eprintln!("proxy refused: {} {}", r.status, r.reason);
                None
            }
            ProxiedEvent::Proxy(_) => None,
        }
    }
}

/// Prints what the user should see of an event.
fn show(event: Event) {
    match event {
        Event::Open(open) => eprintln!(
            "connected (protocol: {}, extension: {})",
            open.protocol.as_deref().unwrap_or("none"),
            open.extension.as_deref().unwrap_or("none")
        ),
        Event::Message(Message::Text(t)) => println!("{}", t.as_str()),
        Event::Message(Message::Binary(b)) => println!("<{} binary bytes>", b.len()),
        Event::Rejected(r) => eprintln!("refused: {} {}", r.status, r.reason),
        Event::Closed(c) => eprintln!("closed: {} {}", c.code, c.reason),
        _ => {}
    }
}

/// Drives `client` over `stream`, sending the lines that arrive on `lines`.
fn run<C: Client>(
    stream: &mut TcpStream,
    client: &mut C,
    lines: Receiver<String>,
) -> io::Result<()> {
    let mut input = vec![0u8; 64 * 1024];
    let mut output = Vec::new();
    let mut stdin_open = true;
    let mut on_event = |_: &mut C, event| {
        if let Some(event) = C::ws_event(event) {
            show(event);
        }
    };
    loop {
        client.handle_timeout(Instant::now());
        while let Some(event) = client.poll_event() {
            on_event(client, event);
        }
        while stdin_open {
            match lines.try_recv() {
                Ok(line) => client.send_line(line),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    stdin_open = false;
                    client.close_normally();
                }
            }
        }
        client.poll_transmit(&mut output);
        stream.write_all(&output)?;
        output.clear();
        // Finished only once its last output (a Close reply) is written.
        if client.is_finished() {
            break;
        }
        let wait = read_timeout(client, Instant::now()).map_or(STDIN_POLL, |t| t.min(STDIN_POLL));
        stream.set_read_timeout(Some(wait))?;
        match stream.read(&mut input) {
            Ok(0) => {
                let _ = client.receive_eof();
            }
            Ok(n) => {
                let _ = feed(client, &input[..n], &mut on_event);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
    }
    linger_close(stream);
    Ok(())
}

fn main() -> ExitCode {
    let usage =
        "usage: client ws://HOST[:PORT]/PATH [--proxy URL] [--header K:V]... [--protocol P]...";
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let (mut proxy, mut headers, mut protocols) = (None, Vec::new(), Vec::new());
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--proxy", Some(p)) => proxy = Some(p),
            ("--header", Some(h)) => match h.split_once(':') {
                Some((k, v)) => headers.push((k.trim().to_owned(), v.trim().to_owned())),
                None => {
                    eprintln!("--header takes K:V\n{usage}");
                    return ExitCode::from(2);
                }
            },
            ("--protocol", Some(p)) => protocols.push(p),
            _ => {
                eprintln!("{usage}");
                return ExitCode::from(2);
            }
        }
    }
    let config = Config::default()
        .with_deflate(DeflateConfig::default())
        .with_protocols(protocols)
        .and_then(|c| headers.iter().try_fold(c, |c, (k, v)| c.with_header(k, v)));
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Standard input is read on a thread of its own, a line at a time.
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let result = match proxy {
        None => sansproto::blocking::connect(&url, config)
            .and_then(|(mut stream, mut conn)| run(&mut stream, &mut conn, lines)),
        Some(proxy) => match ProxiedClient::from_urls(&proxy, &url, config) {
            Ok(mut client) => TcpStream::connect(client.proxy().address())
                .and_then(|mut stream| run(&mut stream, &mut client, lines)),
            Err(e) => Err(io::Error::new(ErrorKind::InvalidInput, e.to_string())),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
