//! The server: one thread per connection, driven by `blocking::drive`.

use crate::wire::{
    decode_message, json_body, json_str, packages, send_message, split_package, Kind, Message,
    Route, DATA, HANDSHAKE, HANDSHAKE_ACK, HEARTBEAT, KICK,
};
use sansproto::blocking;
use sansproto::prefix::{Connection, Event};
use serde_json::Value;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// The most connections served at once.
pub const MAX_SESSIONS: usize = 256;

/// The server's route dictionary, in the order the handshake lists it.
const DICT: [(&str, u16); 5] = [
    ("connector.entryHandler.entry", 1),
    ("connector.entryHandler.notify", 2),
    ("connector.entryHandler.kick", 3),
    ("connector.entryHandler.never", 4),
    ("onNotify", 0x0102),
];

/// Where a server connection is (pomelo `common/handler.js`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Inited,
    WaitAck,
    Working,
}

/// One server connection's application state.
struct Session {
    id: u64,
    phase: Phase,
    heartbeat: Duration,
}

impl Session {
    fn on_event(&mut self, conn: &mut Connection, event: Event) {
        let frame = match event {
            Event::Frame(frame) => frame,
            Event::IdleTimeout => {
                let timeout = self.heartbeat * 2;
                return eprintln!(
                    "session {}: nothing heard for {timeout:?}, dropped",
                    self.id
                );
            }
            _ => return,
        };
        let Some((kind, body)) = split_package(&frame) else {
            return;
        };
        let result = match (kind, self.phase) {
            (HANDSHAKE, Phase::Inited) => self.handshake(conn, &body),
            (HANDSHAKE_ACK, Phase::WaitAck) => {
                self.phase = Phase::Working;
                conn.set_heartbeat(self.heartbeat, &[HEARTBEAT], &[])
                    .map_err(|e| e.to_string())
            }
            (DATA, Phase::Working) => decode_message(&body).and_then(|m| self.on_message(conn, m)),
            // Out of turn: ignored, as pomelo's handlers do. A heartbeat
            // only moves the idle deadline, which `receive` did.
            (HANDSHAKE | HANDSHAKE_ACK | HEARTBEAT | DATA, _) => Ok(()),
            (other, _) => Err(format!("package type {other} has no handler")),
        };
        if let Err(e) = result {
            eprintln!("session {}: dropped: {e}", self.id);
            conn.close();
        }
    }

    fn handshake(&mut self, conn: &mut Connection, body: &[u8]) -> Result<(), String> {
        let hello: Value = serde_json::from_slice(body).unwrap_or_default();
        let sys = &hello["sys"];
        if !sys["type"].is_string() || !sys["version"].is_string() {
            let _ = conn.send_with_header(&[HANDSHAKE], br#"{"code":501}"#);
            return Err("handshake without sys.type and sys.version: code 501".into());
        }
        let dict: Vec<String> = DICT
            .iter()
            .map(|(route, code)| format!("{}:{code}", json_str(route)))
            .collect();
        let reply = format!(
            r#"{{"code":200,"sys":{{"heartbeat":{},"dict":{{{}}},"useDict":true}}}}"#,
            self.heartbeat.as_secs(),
            dict.join(",")
        );
        conn.send_with_header(&[HANDSHAKE], reply.into_bytes())
            .map_err(|e| e.kind().to_string())?;
        self.phase = Phase::WaitAck;
        eprintln!(
            "session {}: handshake from {} {}",
            self.id, sys["type"], sys["version"]
        );
        Ok(())
    }

    fn on_message(&mut self, conn: &mut Connection, m: Message) -> Result<(), String> {
        let route = match &m.route {
            Route::Name(name) => name.as_str(),
            Route::Code(code) => match DICT.iter().find(|(_, c)| c == code) {
                Some((name, _)) => name,
                // Pomelo's coder drops a message whose code it cannot map.
                None => {
                    eprintln!("session {}: no route for code {code}", self.id);
                    return Ok(());
                }
            },
            Route::None => "",
        };
        let body = json_body(&m.body);
        match (m.kind, route) {
            (Kind::Request, "connector.entryHandler.entry") => {
                send_message(conn, Kind::Response, m.id, &Route::None, br#"{"code":200}"#);
            }
            (Kind::Request, "chat.chatHandler.send") => {
                send_message(conn, Kind::Response, m.id, &Route::None, br#"{"code":200}"#);
                send_message(conn, Kind::Push, 0, &Route::Name("onChat".into()), body);
            }
            (Kind::Notify, "connector.entryHandler.notify") => {
                send_message(conn, Kind::Push, 0, &Route::Code(0x0102), body);
            }
            (Kind::Request, "connector.entryHandler.never") => {}
            (Kind::Request | Kind::Notify, "connector.entryHandler.kick") => {
                let _ = conn.send_with_header(&[KICK], br#"{"reason":"kick"}"#);
                conn.close();
                eprintln!("session {}: kicked", self.id);
            }
            (Kind::Request, other) => {
                let answer = format!(
                    r#"{{"code":500,"msg":{}}}"#,
                    json_str(&format!("no handler for {other}"))
                );
                send_message(conn, Kind::Response, m.id, &Route::None, answer.as_bytes());
            }
            (Kind::Notify, other) => eprintln!("session {}: notify to {other} ignored", self.id),
            (kind, _) => return Err(format!("a {kind:?} from a client")),
        }
        Ok(())
    }
}

/// Serves every connection on a thread of its own, at most
/// [`MAX_SESSIONS`] at once: one more is closed as soon as it is accepted.
pub fn serve(listener: TcpListener, heartbeat: Duration) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut next_id = 1;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_SESSIONS {
            open.fetch_sub(1, Ordering::SeqCst);
            eprintln!("{MAX_SESSIONS} sessions open: a connection refused");
            continue;
        }
        let open = Arc::clone(&open);
        let mut session = Session {
            id: next_id,
            phase: Phase::Inited,
            heartbeat,
        };
        next_id += 1;
        thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let config = packages().idle_timeout(heartbeat * 2).build();
            let Ok(config) = config.map_err(|e| eprintln!("config: {e}")) else {
                return;
            };
            let mut conn = Connection::new(config);
            let id = session.id;
            let result = blocking::drive(&mut stream, &mut conn, |conn, event| {
                session.on_event(conn, event)
            });
            match result {
                Ok(None) => eprintln!("session {id}: closed"),
                Ok(Some(e)) => eprintln!("session {id}: dropped: {e}"),
                Err(e) => eprintln!("session {id}: i/o: {e}"),
            }
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}
