//! The scripted client: its own loop, so that request deadlines wake it
//! as well as the connection's timers.

use crate::wire::{
    decode_message, packages, send_message, split_package, Kind, Message, Route, DATA, HANDSHAKE,
    HANDSHAKE_ACK, HEARTBEAT, KICK, MAX_REQUEST_ID,
};
use sansproto::blocking;
use sansproto::correlate::{self, Correlator, Outcome};
use sansproto::prefix::{Connection, Event};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The most routes a client takes from a handshake's dictionary.
const MAX_DICT: usize = 1024;

/// One step of the client's script.
enum Step {
    /// A request, answered (or timed out), and how many pushes follow.
    Request(&'static str, &'static str, usize),
    /// A request with a short timeout of its own.
    RequestWithin(&'static str, &'static str, Duration),
    /// A notify, and how many pushes follow.
    Notify(&'static str, &'static str, usize),
    /// Waits for this many heartbeats from the server.
    Heartbeats(usize),
}

/// The client's side of the session.
struct Client {
    requests: Correlator<String>,
    /// The dictionary learnt from the handshake, both ways.
    codes: HashMap<String, u16>,
    routes: HashMap<u16, String>,
    shaken: bool,
    /// Answers, pushes or heartbeats the current step waits for.
    awaiting: usize,
    awaiting_heartbeats: usize,
    heartbeats_wanted: usize,
    /// The heartbeat timeout learnt from the handshake.
    timeout: Duration,
    lines: Vec<String>,
}

impl Client {
    fn route(&self, name: &str) -> (Route, String) {
        match self.codes.get(name) {
            Some(&code) => (Route::Code(code), format!("{name} (route code {code})")),
            None => (Route::Name(name.into()), name.into()),
        }
    }

    fn run(&mut self, conn: &mut Connection, step: &Step, now: Instant) -> Result<(), String> {
        match *step {
            Step::Request(name, body, pushes) => self
                .request(conn, name, body, None, now)
                .map(|()| self.awaiting = 1 + pushes),
            Step::RequestWithin(name, body, within) => self
                .request(conn, name, body, Some(within), now)
                .map(|()| self.awaiting = 1),
            Step::Notify(name, body, pushes) => {
                let (route, shown) = self.route(name);
                send_message(conn, Kind::Notify, 0, &route, body.as_bytes());
                self.lines.push(format!("notify {shown}: {body}"));
                self.awaiting = pushes;
                Ok(())
            }
            Step::Heartbeats(_) if self.timeout.is_zero() => {
                self.lines.push("no heartbeat to wait for".into());
                Ok(())
            }
            Step::Heartbeats(n) => {
                self.awaiting_heartbeats = n;
                self.heartbeats_wanted = n;
                Ok(())
            }
        }
    }

    fn request(
        &mut self,
        conn: &mut Connection,
        name: &str,
        body: &str,
        within: Option<Duration>,
        now: Instant,
    ) -> Result<(), String> {
        let (route, shown) = self.route(name);
        let started = match within {
            Some(t) => self.requests.start_with_timeout(shown, now, t),
            None => self.requests.start(shown, now),
        };
        let id = started.map_err(|e| e.kind().to_string())?;
        send_message(conn, Kind::Request, id, &route, body.as_bytes());
        Ok(())
    }

    fn on_event(&mut self, conn: &mut Connection, event: Event) {
        let frame = match event {
            Event::Frame(frame) => frame,
            Event::IdleTimeout => return self.lines.push("the server went quiet".into()),
            _ => return,
        };
        let Some((kind, body)) = split_package(&frame) else {
            return;
        };
        let result = match kind {
            HANDSHAKE if !self.shaken => self.handshake(conn, &body),
            HEARTBEAT => {
                if self.awaiting_heartbeats == 1 {
                    self.lines.push(format!(
                        "{} heartbeats heard: still open past the {:?} timeout",
                        self.heartbeats_wanted, self.timeout
                    ));
                }
                self.awaiting_heartbeats = self.awaiting_heartbeats.saturating_sub(1);
                Ok(())
            }
            DATA => decode_message(&body).map(|m| self.on_message(m)),
            KICK => {
                let reason = String::from_utf8_lossy(&body);
                self.lines.push(format!("kicked: {reason}"));
                Ok(())
            }
            other => Err(format!("unexpected package type {other}")),
        };
        if let Err(e) = result {
            self.lines.push(format!("closing: {e}"));
            conn.close();
        }
    }

    /// Learns the heartbeat and the dictionary, then acknowledges.
    fn handshake(&mut self, conn: &mut Connection, body: &[u8]) -> Result<(), String> {
        let reply: Value = serde_json::from_slice(body).map_err(|e| format!("handshake: {e}"))?;
        match reply["code"].as_u64() {
            Some(200) => {}
            _ => return Err(format!("handshake refused: code {}", reply["code"])),
        }
        let sys = &reply["sys"];
        // Seconds; none (or 0) is no heartbeat, as for Pomelo's client,
        // and more than an hour is not believed.
        let seconds = sys["heartbeat"].as_u64().unwrap_or(0);
        if seconds > 3600 {
            return Err(format!("heartbeat of {seconds} s"));
        }
        let interval = Duration::from_secs(seconds);
        if seconds > 0 {
            conn.set_heartbeat(interval, &[HEARTBEAT], &[])
                .map_err(|e| e.to_string())?;
            conn.set_idle_timeout(Some(interval * 2));
        } else {
            conn.stop_heartbeat();
            conn.set_idle_timeout(None);
        }
        if let Some(dict) = sys["dict"].as_object() {
            for (route, code) in dict.iter().take(MAX_DICT) {
                let Some(code) = code.as_u64().and_then(|c| u16::try_from(c).ok()) else {
                    continue;
                };
                self.codes.insert(route.clone(), code);
                self.routes.insert(code, route.clone());
            }
        }
        conn.send_with_header(&[HANDSHAKE_ACK], [])
            .map_err(|e| e.kind().to_string())?;
        self.shaken = true;
        self.timeout = interval * 2;
        self.lines.push(format!(
            "handshake: code 200, heartbeat {interval:?} (timeout {:?}), {} routes in the dictionary",
            interval * 2,
            self.codes.len()
        ));
        Ok(())
    }

    fn on_message(&mut self, m: Message) {
        let body = String::from_utf8_lossy(&m.body);
        let line = match (m.kind, &m.route) {
            (Kind::Response, _) => match self.requests.reply(m.id) {
                Some(route) => format!("request {} {route}: {body}", m.id),
                None => format!("response to no request (id {}): {body}", m.id),
            },
            (Kind::Push, Route::Code(code)) => match self.routes.get(code) {
                Some(name) => format!("push {name} (route code {code}): {body}"),
                None => format!("push to unknown route code {code}: {body}"),
            },
            (Kind::Push, Route::Name(name)) => format!("push {name}: {body}"),
            (kind, _) => format!("unexpected {kind:?} from the server"),
        };
        self.awaiting = self.awaiting.saturating_sub(1);
        self.lines.push(line);
    }

    fn on_timeouts(&mut self, now: Instant) {
        self.requests.handle_timeout(now);
        while let Some(Outcome::TimedOut { id, token }) = self.requests.poll_outcome() {
            self.lines
                .push(format!("request {id} {token}: no response in time"));
            self.awaiting = self.awaiting.saturating_sub(1);
        }
    }
}

/// The script: every step waits for what the one before expects.
const SCRIPT: [Step; 6] = [
    Step::Request("connector.entryHandler.entry", r#"{"user":"pomelo"}"#, 0),
    Step::Request("chat.chatHandler.send", r#"{"content":"hello"}"#, 1),
    Step::Notify("connector.entryHandler.notify", r#"{"n":1}"#, 1),
    Step::RequestWithin(
        "connector.entryHandler.never",
        "{}",
        Duration::from_millis(500),
    ),
    // Three beats outlast the 2 × 1 s timeout: the client's own keep the
    // session open.
    Step::Heartbeats(3),
    Step::Notify("connector.entryHandler.kick", "{}", 0),
];

/// Runs [`SCRIPT`] and returns what happened, line by line.
pub fn run(addr: &str) -> Result<Vec<String>, String> {
    // Ids from 127, so that the second takes two LEB128 bytes (`80 01`).
    let ids = correlate::Config::builder()
        .ids(1..=MAX_REQUEST_ID)
        .start_at(127)
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let mut client = Client {
        requests: Correlator::new(ids),
        codes: HashMap::new(),
        routes: HashMap::new(),
        shaken: false,
        awaiting: 0,
        awaiting_heartbeats: 0,
        heartbeats_wanted: 0,
        timeout: Duration::ZERO,
        lines: Vec::new(),
    };
    // Until the reply says otherwise: 5 s for the handshake.
    let config = packages().idle_timeout(Duration::from_secs(5)).build();
    let mut conn = Connection::new(config.map_err(|e| e.to_string())?);
    let hello = br#"{"sys":{"type":"sansproto","version":"0.1.0"},"user":{}}"#;
    conn.send_with_header(&[HANDSHAKE], hello)
        .map_err(|e| e.kind().to_string())?;
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut input = vec![0u8; 16 * 1024];
    let mut output = Vec::new();
    let mut script = SCRIPT.iter();
    loop {
        let now = Instant::now();
        conn.handle_timeout(now);
        client.on_timeouts(now);
        while let Some(event) = conn.poll_event() {
            client.on_event(&mut conn, event);
        }
        if client.shaken && client.awaiting == 0 && client.awaiting_heartbeats == 0 {
            if let Some(step) = script.next() {
                client.run(&mut conn, step, now)?;
            }
        }
        conn.poll_transmit(&mut output);
        if !output.is_empty() {
            stream
                .write_all(&output)
                .map_err(|e| format!("write: {e}"))?;
            output.clear();
        }
        if conn.is_finished() {
            break;
        }
        // Wait for bytes until the next deadline, the connection's or a
        // request's.
        let next = [conn.poll_timeout(), client.requests.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let wait = next.map(|t| {
            t.saturating_duration_since(now)
                .max(Duration::from_millis(1))
        });
        stream.set_read_timeout(wait).map_err(|e| e.to_string())?;
        let fed = match stream.read(&mut input) {
            Ok(0) => {
                client.lines.push("closed by the server".into());
                conn.receive_eof()
            }
            Ok(n) => blocking::feed(
                &mut conn,
                input.get(..n).unwrap_or_default(),
                &mut |conn, event| client.on_event(conn, event),
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                Ok(())
            }
            Err(e) => return Err(format!("read: {e}")),
        };
        if let Err(e) = fed {
            client
                .lines
                .push(format!("the server broke the framing: {e}"));
        }
    }
    blocking::linger_close(&mut stream);
    Ok(client.lines)
}
