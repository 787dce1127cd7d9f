//! The wire: packages and the messages inside data packages, both ways.

use bytes::{Bytes, BytesMut};
use sansproto::prefix::varint::{Varint, VarintFormat};
use sansproto::prefix::{Builder, Config, Connection, Decoded, Decoder, Encoder};
use serde_json::Value;

/// Largest package body either side accepts.
pub const MAX_BODY: usize = 64 * 1024;

/// Package types.
pub const HANDSHAKE: u8 = 1;
pub const HANDSHAKE_ACK: u8 = 2;
pub const HEARTBEAT: u8 = 3;
pub const DATA: u8 = 4;
pub const KICK: u8 = 5;

/// Pomelo's request ids: LEB128, 1 ..= 2^31 − 1, so at most 5 bytes.
pub const REQUEST_ID: Varint = Varint::new(VarintFormat::Leb128).with_max_bytes(5);
pub const MAX_REQUEST_ID: u64 = (1 << 31) - 1;

/// Packages: type byte, 3-byte big-endian length, body; the whole package
/// is kept, so the type is its first byte and the body starts at 4.
pub fn packages() -> Builder {
    Config::builder()
        .length_field_offset(1)
        .length_field_width(3)
        .strip(0)
        .max_payload_length(MAX_BODY)
}

/// A route string: 1-byte length, then the bytes (at most 255 by the
/// field's width).
pub fn route_field() -> Result<Config, String> {
    let config = Config::builder().length_field_width(1).build();
    config.map_err(|e| e.to_string())
}

/// A package's type and body; `None` for a frame shorter than a header.
pub fn split_package(frame: &Bytes) -> Option<(u8, Bytes)> {
    let kind = *frame.first()?;
    frame.get(4..)?;
    Some((kind, frame.slice(4..)))
}

/// The message types, by their value in the flag's bits 1–3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request = 0,
    Notify = 1,
    Response = 2,
    Push = 3,
}

impl Kind {
    pub fn has_id(self) -> bool {
        matches!(self, Kind::Request | Kind::Response)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A response: no route.
    None,
    /// Compressed: a code from the handshake's dictionary.
    Code(u16),
    Name(String),
}

/// One message of a data package.
#[derive(Debug)]
pub struct Message {
    pub kind: Kind,
    /// 0 for notify and push.
    pub id: u64,
    pub route: Route,
    pub body: Bytes,
}

/// Decodes a data package's body, refusing anything short or malformed.
pub fn decode_message(data: &Bytes) -> Result<Message, String> {
    let flag = *data.first().ok_or("empty message")?;
    if flag & 0xf0 != 0 {
        return Err(format!("flag {flag:#04x}: gzip and bits 5-7 are not taken"));
    }
    let kind = match (flag >> 1) & 0x07 {
        0 => Kind::Request,
        1 => Kind::Notify,
        2 => Kind::Response,
        3 => Kind::Push,
        other => return Err(format!("message type {other}")),
    };
    let mut at = 1;
    let rest = |at: usize| data.get(at..).unwrap_or_default();
    let mut id = 0;
    if kind.has_id() {
        let (value, used) = REQUEST_ID
            .decode(rest(at))
            .map_err(|e| format!("request id: {e}"))?
            .ok_or("request id cut short")?;
        if value == 0 || value > MAX_REQUEST_ID {
            return Err(format!("request id {value} outside 1..=2^31-1"));
        }
        id = value;
        at += used;
    }
    let route = match kind {
        Kind::Response => Route::None,
        _ if flag & 1 == 1 => {
            let code: [u8; 2] = rest(at)
                .get(..2)
                .and_then(|c| c.try_into().ok())
                .ok_or("route code cut short")?;
            at += 2;
            Route::Code(u16::from_be_bytes(code))
        }
        _ => {
            // The field is at most 256 bytes: only those are copied.
            let field = rest(at).get(..256).unwrap_or(rest(at));
            let mut buf = BytesMut::from(field);
            let name = match Decoder::new(&route_field()?).decode(&mut buf) {
                Ok(Some(Decoded::Frame(name))) => name,
                Ok(_) => return Err("route cut short".into()),
                Err(e) => return Err(format!("route: {e}")),
            };
            at += 1 + name.len();
            let name = std::str::from_utf8(&name).map_err(|_| "route not UTF-8")?;
            Route::Name(name.to_owned())
        }
    };
    let body = data.slice(at.min(data.len())..);
    Ok(Message {
        kind,
        id,
        route,
        body,
    })
}

/// The bytes of a message before its body: flag, id, route.
pub fn message_head(kind: Kind, id: u64, route: &Route) -> Result<Vec<u8>, String> {
    let compressed = u8::from(matches!(route, Route::Code(_)));
    let mut head = vec![(kind as u8) << 1 | compressed];
    if kind.has_id() {
        REQUEST_ID
            .encode(id, &mut head)
            .map_err(|e| format!("request id {id}: {e}"))?;
    }
    match route {
        Route::None => {}
        Route::Code(code) => head.extend_from_slice(&code.to_be_bytes()),
        Route::Name(name) => {
            let field = Encoder::new(&route_field()?).encode(&[], name.as_bytes(), &mut head);
            field.map_err(|e| format!("route {name:?}: {e}"))?;
        }
    }
    Ok(head)
}

/// Queues one data package; a refusal is logged, not fatal.
pub fn send_message(
    conn: &mut Connection,
    kind: Kind,
    id: u64,
    route: &Route,
    body: &[u8],
) -> bool {
    let sent = message_head(kind, id, route).and_then(|head| {
        let parts = [&head[..], body];
        conn.send_parts_with_header(&[DATA], parts)
            .map_err(|e| e.kind().to_string())
    });
    sent.map_err(|e| eprintln!("send refused: {e}")).is_ok()
}

/// A body as JSON text: itself when it is JSON, else `{}` (pomelo's coder).
pub fn json_body(body: &[u8]) -> &[u8] {
    match serde_json::from_slice::<Value>(body) {
        Ok(_) => body,
        Err(_) => b"{}",
    }
}

pub fn json_str(s: &str) -> String {
    Value::from(s).to_string()
}
