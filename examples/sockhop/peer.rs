//! One side of a Sockhop connection, sans-IO: the two receive framings
//! on one buffer, the handshake, the message encodings, the callbacks.

use bytes::{Bytes, BytesMut};
use sansproto::correlate::{self, Correlator, Outcome};
use sansproto::delimited;
use sansproto::prefix::{self, ByteOrder, Decoded, Encoder};
use serde_json::Value;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Largest binary payload (message id, type, data, callback id) accepted.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// How long a peer has to answer the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const CALLBACK_ID_LEN: usize = 36;

const HANDSHAKE: &str = "SockhopHandshake";
const TRANSITION: &str = "SockhopBinaryModeTransition";
const HANDSHAKE_DATA: &str =
    r#"{"protocol_version":2,"library_version":"sansproto","request_binary_mode":true}"#;

/// Binary mode's framing: u32 LE length, +1 for the message id, the
/// length field stripped (the message id is the payload's first byte).
fn binary_framing() -> prefix::Config {
    prefix::Config::builder()
        .byte_order(ByteOrder::LittleEndian)
        .length_adjustment(1)
        .max_payload_length(MAX_PAYLOAD)
        .build()
        .expect("valid layout")
}

/// What a message carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Json(Value),
    Buffer(Bytes),
}

impl std::fmt::Display for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Data::Json(v) => write!(f, "{v}"),
            Data::Buffer(b) => b.iter().try_for_each(|x| write!(f, "{x:02x}")),
        }
    }
}

/// Where a message stands among callbacks.
#[derive(Debug, Clone, PartialEq)]
pub enum Callback {
    None,
    /// A request: answer it with [`Peer::respond`] and this id.
    Request(String),
    Response(String),
}

/// One message as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub type_name: String,
    pub data: Data,
    pub callback: Callback,
}

/// What a request was, handed back with its reply or timeout.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Handshake,
    App(String),
}

/// What the application is told.
#[derive(Debug)]
pub enum Event {
    /// The peer answered our handshake; with `true` we now send binary.
    Handshake {
        binary: bool,
    },
    /// The peer sends binary from here on; `buffered` bytes after its
    /// transition line had already arrived.
    BinaryReceive {
        buffered: usize,
    },
    Message(Message),
    Reply {
        id: u64,
        token: String,
        message: Message,
    },
    TimedOut {
        id: u64,
        token: String,
    },
    /// A JSON line that is no Sockhop message, skipped.
    Skipped(String),
}

/// How received bytes are framed now.
enum Rx {
    Lines(delimited::Decoder),
    Binary(prefix::Decoder),
}

/// One side of a Sockhop connection, sans-IO: bytes in, events and bytes
/// out, a correlator for the callbacks it asked for.
pub struct Peer {
    rx: Rx,
    buf: BytesMut,
    tx_binary: bool,
    encoder: Encoder,
    out: Vec<u8>,
    callbacks: Correlator<Token>,
    events: VecDeque<Event>,
}

impl Peer {
    /// A connection's side, its handshake request queued.
    pub fn new(now: Instant) -> Self {
        let ids = correlate::Config::builder()
            .timeout(HANDSHAKE_TIMEOUT)
            .build()
            .expect("valid ids");
        let mut peer = Peer {
            rx: Rx::Lines(delimited::Decoder::new(&delimited::Config::lines())),
            buf: BytesMut::new(),
            tx_binary: false,
            encoder: Encoder::new(&binary_framing()),
            out: Vec::new(),
            callbacks: Correlator::new(ids),
            events: VecDeque::new(),
        };
        if let Ok(id) = peer.callbacks.start(Token::Handshake, now) {
            // Written as is, in Sockhop's key order.
            peer.queue_line(HANDSHAKE, HANDSHAKE_DATA, 11, &id.to_string());
        }
        peer
    }

    /// Queues a message (the type is its class name in Sockhop).
    pub fn send(&mut self, type_name: &str, data: Data) -> Result<(), String> {
        let msg_id = if matches!(data, Data::Json(_)) {
            10
        } else {
            13
        };
        self.queue(type_name, &data, msg_id, "")
    }

    /// Queues a callback request; its reply or timeout comes back with
    /// `token`.
    pub fn request(
        &mut self,
        type_name: &str,
        data: Data,
        token: &str,
        now: Instant,
        timeout: Duration,
    ) -> Result<u64, String> {
        let id = self
            .callbacks
            .start_with_timeout(Token::App(token.into()), now, timeout)
            .map_err(|e| e.kind().to_string())?;
        let msg_id = if matches!(data, Data::Json(_)) {
            11
        } else {
            14
        };
        self.queue(type_name, &data, msg_id, &id.to_string())?;
        Ok(id)
    }

    /// Answers the peer's callback request `id`.
    pub fn respond(&mut self, id: &str, type_name: &str, data: Data) -> Result<(), String> {
        let msg_id = if matches!(data, Data::Json(_)) {
            12
        } else {
            15
        };
        self.queue(type_name, &data, msg_id, id)
    }

    /// Encodes one message in the current sending mode.
    fn queue(&mut self, type_name: &str, data: &Data, msg_id: u8, id: &str) -> Result<(), String> {
        if !self.tx_binary {
            let Data::Json(value) = data else {
                return Err("buffers are sent in binary mode only".into());
            };
            self.queue_line(type_name, &value.to_string(), msg_id, id);
            return Ok(());
        }
        let name = u8::try_from(type_name.len()).map_err(|_| "type name over 255 bytes")?;
        let data = match data {
            Data::Json(v) => Bytes::from(v.to_string()),
            Data::Buffer(b) => b.clone(),
        };
        let data_len = u32::try_from(data.len()).map_err(|_| "data over 4 GiB")?;
        let mut callback = [0u8; CALLBACK_ID_LEN];
        if msg_id % 3 != 1 {
            // 11, 12, 14, 15 carry a callback id
            let slot = callback
                .get_mut(..id.len())
                .ok_or("callback id over 36 bytes")?;
            slot.copy_from_slice(id.as_bytes());
        }
        let callback: &[u8] = if msg_id % 3 == 1 { &[] } else { &callback };
        let parts: [&[u8]; 5] = [
            &[msg_id, name],
            type_name.as_bytes(),
            &data_len.to_le_bytes(),
            &data,
            callback,
        ];
        self.encoder
            .encode_parts(&[], &parts, &mut self.out)
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Queues a JSON line with `data` as JSON text.
    fn queue_line(&mut self, type_name: &str, data: &str, msg_id: u8, id: &str) {
        let key = match msg_id {
            11 => format!(",\"id\":{}", Value::from(id)),
            12 => format!(",\"callback_id\":{}", Value::from(id)),
            _ => String::new(),
        };
        let line = format!(
            "{{\"type\":{},\"data\":{data}{key}}}\n",
            Value::from(type_name)
        );
        self.out.extend_from_slice(line.as_bytes());
    }

    /// Feeds bytes read from the peer; an error ends the connection.
    pub fn receive(&mut self, data: &[u8]) -> Result<(), String> {
        self.buf.extend_from_slice(data);
        loop {
            let frame = match &mut self.rx {
                Rx::Lines(lines) => lines.decode(&mut self.buf),
                Rx::Binary(frames) => frames.decode(&mut self.buf),
            };
            match frame.map_err(|e| e.to_string())? {
                Some(Decoded::Frame(frame)) => self.on_frame(frame)?,
                Some(_) => {}
                None => return Ok(()),
            }
        }
    }

    fn on_frame(&mut self, frame: Bytes) -> Result<(), String> {
        let message = match self.rx {
            Rx::Lines(_) => match parse_line(&frame) {
                Ok(m) => m,
                Err(e) => {
                    self.events.push_back(Event::Skipped(e));
                    return Ok(());
                }
            },
            Rx::Binary(_) => parse_binary(frame)?,
        };
        match (message.type_name.as_str(), &message.callback) {
            (HANDSHAKE, Callback::Request(id)) => {
                let id = id.clone();
                let asked =
                    matches!(&message.data, Data::Json(v) if v["request_binary_mode"] == true);
                let answer = serde_json::json!({ "allow_binary_mode": asked });
                self.respond(&id, "Object", Data::Json(answer))?;
            }
            (TRANSITION, Callback::None) => {
                self.rx = Rx::Binary(prefix::Decoder::new(&binary_framing()));
                let buffered = self.buf.len();
                self.events.push_back(Event::BinaryReceive { buffered });
            }
            (_, Callback::Response(id)) => {
                let token = id
                    .parse()
                    .ok()
                    .and_then(|id| Some((id, self.callbacks.reply(id)?)));
                match token {
                    Some((_, Token::Handshake)) => {
                        let binary = matches!(&message.data, Data::Json(v) if v["allow_binary_mode"] == true);
                        if binary {
                            self.queue(TRANSITION, &Data::Json(serde_json::json!({})), 10, "")?;
                            self.tx_binary = true;
                        }
                        self.events.push_back(Event::Handshake { binary });
                    }
                    Some((id, Token::App(token))) => {
                        self.events.push_back(Event::Reply { id, token, message })
                    }
                    // Unknown, answered already, or timed out: dropped.
                    None => {}
                }
            }
            _ => self.events.push_back(Event::Message(message)),
        }
        Ok(())
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        match self.callbacks.poll_outcome()? {
            Outcome::TimedOut {
                token: Token::Handshake,
                ..
            } => Some(Event::Handshake { binary: false }),
            Outcome::TimedOut {
                id,
                token: Token::App(token),
            } => Some(Event::TimedOut { id, token }),
            _ => None,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.callbacks.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.callbacks.handle_timeout(now);
    }

    /// Bytes received that do not yet form a whole line or message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes the bytes to send.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

fn parse_line(line: &[u8]) -> Result<Message, String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut object) = value else {
        return Err("not a JSON object".into());
    };
    let Some(Value::String(type_name)) = object.remove("type") else {
        return Err("no \"type\" string".into());
    };
    let data = Data::Json(object.remove("data").unwrap_or(Value::Null));
    let callback = match (object.remove("id"), object.remove("callback_id")) {
        (Some(Value::String(id)), _) => Callback::Request(id),
        (_, Some(Value::String(id))) => Callback::Response(id),
        _ => Callback::None,
    };
    Ok(Message {
        type_name,
        data,
        callback,
    })
}

/// The fields of a binary message, taken in order.
struct Fields(Bytes);

impl Fields {
    fn take(&mut self, n: usize) -> Result<Bytes, String> {
        if self.0.len() < n {
            let left = self.0.len();
            return Err(format!(
                "binary message cut short: {n} bytes wanted, {left} left"
            ));
        }
        Ok(self.0.split_to(n))
    }
}

/// A binary payload: message id, type, data, callback id where present.
fn parse_binary(payload: Bytes) -> Result<Message, String> {
    let mut p = Fields(payload);
    let &[msg_id, name_len] = &p.take(2)?[..] else {
        return Err("binary message cut short".into());
    };
    if !(10..=15).contains(&msg_id) {
        return Err(format!("unknown binary message id {msg_id}"));
    }
    let type_name =
        String::from_utf8(p.take(name_len.into())?.to_vec()).map_err(|_| "type name not UTF-8")?;
    let &[a, b, c, d] = &p.take(4)?[..] else {
        return Err("binary message cut short".into());
    };
    let len = u32::from_le_bytes([a, b, c, d]);
    let data = p.take(usize::try_from(len).map_err(|_| "data length")?)?;
    let callback = if msg_id % 3 == 1 {
        String::new()
    } else {
        let id = p.take(CALLBACK_ID_LEN)?;
        let used = id.split(|&b| b == 0).next().unwrap_or_default();
        String::from_utf8(used.to_vec()).map_err(|_| "callback id not UTF-8")?
    };
    if !p.0.is_empty() {
        return Err(format!("{} bytes after a binary message", p.0.len()));
    }
    let data = if msg_id < 13 {
        Data::Json(serde_json::from_slice(&data).map_err(|e| format!("data not JSON: {e}"))?)
    } else {
        Data::Buffer(data)
    };
    let callback = match msg_id % 3 {
        1 => Callback::None,
        2 => Callback::Request(callback),
        _ => Callback::Response(callback),
    };
    Ok(Message {
        type_name,
        data,
        callback,
    })
}
