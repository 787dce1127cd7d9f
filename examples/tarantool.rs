//! Tarantool 1.5 iproto over loopback: a small server holding one
//! in-memory space, and a client that pipelines requests and matches each
//! reply to its request with a `Correlator`.
//!
//! ```text
//! cargo run --example tarantool -- server 127.0.0.1:0     # prints its address
//! cargo run --example tarantool -- client 127.0.0.1:PORT  # prints each reply
//! ```
//!
//! The wire, in `WIRE-FORMATS.md` §2's terms, and where each piece comes
//! from:
//!
//! - Header: three little-endian u32, type, body length, request id; the
//!   body follows (Tarantool archive/1.5 doc/box-protocol.txt). Framed by
//!   `prefix` with the length at offset 4, +4 adjustment (the id after it is
//!   not counted), nothing stripped.
//! - Limit: Tarantool refuses a body over 2^31 ("package is too big",
//!   archive/1.5 src/iproto.cc); both sides here refuse one over
//!   [`MAX_BODY`] (1 MiB).
//! - Types: ping 0xff00, insert 13, select 17 (box-protocol.txt).
//!   Insert body: space u32, flags u32, tuple; flags BOX_RETURN_TUPLE 1 and
//!   BOX_ADD 2. Select body: space, index, offset, limit, key count (u32
//!   each), then the keys, each a tuple (box-protocol.txt).
//! - Tuple: field count u32, then each field as a BER varint length (most
//!   significant group first, Tarantool's int32_varint: at most 5 bytes)
//!   and its bytes (box-protocol.txt; `prefix::varint`).
//! - Replies: the ping reply is the bare header; others carry a return
//!   code u32 (error code << 8 | status: 1 try again, 2 error), then either a
//!   tuple count u32 and each tuple as its size u32 (the size of its fields,
//!   the count word excluded) and the tuple, or a NUL-terminated error
//!   message (box-protocol.txt).
//! - Error codes (errcode.h of the 1.5 sources): ER_ILLEGAL_PARAMS 2,
//!   ER_MEMORY_ISSUE 7, ER_NO_SUCH_INDEX 53, ER_TUPLE_FOUND 55,
//!   ER_NO_SUCH_SPACE 57.
//! - Request ids: the server echoes them unchanged. The client's come from
//!   a `Correlator` started just below 2^32, so they wrap to 0 as
//!   tarantool-transport's `nextCallbackId` does at 4294967296.
//!
//! This server's own choices: space 0 only, its primary key the first
//! field (compared as bytes), index 0 only; each connection gets its own
//! copy of the space, starting with the tuple `[1, "hi"]`, at most
//! [`MAX_TUPLES`] tuples, and no reply over [`MAX_BODY`]. The replies to
//! the requests of one read are written in reverse order, each cut in two
//! writes, so that a client has to match replies by id and reassemble them.

use bytes::BytesMut;
use sansproto::blocking;
use sansproto::correlate::{self, Correlator, Outcome};
use sansproto::prefix::varint::{Varint, VarintFormat};
use sansproto::prefix::{ByteOrder, Config, Connection, Decoded, Decoder, Encoder, Event};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

/// Largest request or reply body either side accepts.
pub const MAX_BODY: usize = 1 << 20;
/// Most tuples a connection's space holds.
pub const MAX_TUPLES: usize = 1024;

const PING: u32 = 0xff00;
const INSERT: u32 = 13;
const SELECT: u32 = 17;
const BOX_RETURN_TUPLE: u32 = 1;
const BOX_ADD: u32 = 2;
const ER_ILLEGAL_PARAMS: u32 = 2;
const ER_MEMORY_ISSUE: u32 = 7;
const ER_NO_SUCH_INDEX: u32 = 53;
const ER_TUPLE_FOUND: u32 = 55;
const ER_NO_SUCH_SPACE: u32 = 57;

/// Tarantool's int32_varint: BER, at most 5 bytes.
const FIELD_LENGTH: Varint = Varint::new(VarintFormat::Ber).with_max_bytes(5);

/// The framing: the whole 12-byte header kept, bodies up to [`MAX_BODY`]
/// (the limit counts what follows the length field: the id and the body).
fn iproto() -> sansproto::prefix::Builder {
    Config::builder()
        .length_field_offset(4)
        .length_field_width(4)
        .byte_order(ByteOrder::LittleEndian)
        .length_adjustment(4)
        .strip(0)
        .max_payload_length(MAX_BODY + 4)
}

/// One packet: header and body.
fn packet(kind: u32, id: u32, body: &[u8]) -> Result<Vec<u8>, String> {
    let config = iproto().build().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    Encoder::new(&config)
        .encode_parts(&kind.to_le_bytes(), &[&id.to_le_bytes(), body], &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Reads the fields of a body, refusing anything short or malformed.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("{n} bytes wanted, {} left", self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A tuple: field count, then varint-prefixed fields.
    fn tuple(&mut self) -> Result<Vec<Vec<u8>>, String> {
        let count = self.u32()?;
        // Each field takes at least one byte: a count beyond the bytes
        // left is a lie, refused before anything is reserved for it.
        if count as usize > self.0.len() {
            return Err(format!("{count} fields claimed in {} bytes", self.0.len()));
        }
        let mut fields = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let (len, used) = FIELD_LENGTH
                .decode(self.0)
                .map_err(|e| format!("field length: {e}"))?
                .ok_or("field length cut short")?;
            self.take(used)?;
            let len = usize::try_from(len).map_err(|_| "field too long")?;
            fields.push(self.take(len)?.to_vec());
        }
        Ok(fields)
    }

    fn end(&self) -> Result<(), String> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(format!("{n} bytes after the body")),
        }
    }
}

fn put_tuple(fields: &[Vec<u8>], out: &mut Vec<u8>) {
    out.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    for field in fields {
        // A field's length fits in 5 BER bytes: bodies are at most 1 MiB.
        let _ = FIELD_LENGTH.encode(field.len() as u64, out);
        out.extend_from_slice(field);
    }
}

/// Tuples as a reply carries them: count, then size-prefixed tuples.
fn put_tuples(tuples: &[&Vec<Vec<u8>>], out: &mut Vec<u8>) {
    out.extend_from_slice(&0u32.to_le_bytes()); // return code: ok
    out.extend_from_slice(&(tuples.len() as u32).to_le_bytes());
    for fields in tuples {
        let mut tuple = Vec::new();
        put_tuple(fields, &mut tuple);
        // The size counts the fields, not the field count word.
        out.extend_from_slice(&((tuple.len() - 4) as u32).to_le_bytes());
        out.extend_from_slice(&tuple);
    }
}

/// An error reply body: return code, NUL-terminated message.
fn error_body(code: u32, message: &str) -> Vec<u8> {
    // Status 1 is "try again" (errcode.h's flags for ER_MEMORY_ISSUE), 2 an error.
    let status = if code == ER_MEMORY_ISSUE { 1 } else { 2 };
    let mut out = ((code << 8) | status).to_le_bytes().to_vec();
    out.extend_from_slice(message.as_bytes());
    out.push(0);
    out
}

/// The server's space 0: tuples by their first field.
type Space = BTreeMap<Vec<u8>, Vec<Vec<u8>>>;

/// The reply body to one request (`None` for ping: a bare header).
fn answer(kind: u32, body: &[u8], space: &mut Space) -> Option<Vec<u8>> {
    let result = match kind {
        PING => return None,
        SELECT => select(body, space),
        INSERT => insert(body, space),
        other => Err((
            ER_ILLEGAL_PARAMS,
            format!("unsupported request type {other}"),
        )),
    };
    Some(result.unwrap_or_else(|(code, message)| error_body(code, &message)))
}

type Reply = Result<Vec<u8>, (u32, String)>;

fn illegal(e: String) -> (u32, String) {
    (ER_ILLEGAL_PARAMS, format!("Illegal parameters, {e}"))
}

fn select(body: &[u8], space: &Space) -> Reply {
    let mut r = Reader(body);
    let space_no = r.u32().map_err(illegal)?;
    let index = r.u32().map_err(illegal)?;
    let offset = r.u32().map_err(illegal)?;
    let limit = r.u32().map_err(illegal)?;
    let keys = r.u32().map_err(illegal)?;
    if space_no != 0 {
        return Err((ER_NO_SUCH_SPACE, format!("Space {space_no} does not exist")));
    }
    if index != 0 {
        return Err((
            ER_NO_SUCH_INDEX,
            format!("No index #{index} is defined in space 0"),
        ));
    }
    let mut found = Vec::new();
    let mut size = 0;
    for _ in 0..keys {
        let key = r.tuple().map_err(illegal)?;
        let first = key.first().ok_or_else(|| illegal("empty key".into()))?;
        if let Some(tuple) = space.get(first) {
            // Keys may repeat: the reply is bounded, not the key count.
            size += tuple.iter().map(|f| f.len() + 5).sum::<usize>() + 8;
            if size > MAX_BODY {
                return Err((ER_MEMORY_ISSUE, "the reply would pass 1 MiB".into()));
            }
            found.push(tuple);
        }
    }
    r.end().map_err(illegal)?;
    let found: Vec<_> = found
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    let mut out = Vec::new();
    put_tuples(&found, &mut out);
    Ok(out)
}

fn insert(body: &[u8], space: &mut Space) -> Reply {
    let mut r = Reader(body);
    let space_no = r.u32().map_err(illegal)?;
    let flags = r.u32().map_err(illegal)?;
    let tuple = r.tuple().map_err(illegal)?;
    r.end().map_err(illegal)?;
    if space_no != 0 {
        return Err((ER_NO_SUCH_SPACE, format!("Space {space_no} does not exist")));
    }
    let key = tuple
        .first()
        .ok_or_else(|| illegal("empty tuple".into()))?
        .clone();
    if flags & BOX_ADD != 0 && space.contains_key(&key) {
        return Err((ER_TUPLE_FOUND, "Tuple already exists".into()));
    }
    if space.len() >= MAX_TUPLES && !space.contains_key(&key) {
        return Err((
            ER_MEMORY_ISSUE,
            format!("the space holds {MAX_TUPLES} tuples"),
        ));
    }
    space.insert(key, tuple.clone());
    let mut out = Vec::new();
    if flags & BOX_RETURN_TUPLE != 0 {
        put_tuples(&[&tuple], &mut out);
    } else {
        out.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0]); // ok, one tuple affected
    }
    Ok(out)
}

/// One connection: every request of a read is answered, in reverse order,
/// each reply in two writes.
fn serve_connection(mut stream: TcpStream) -> Result<(), String> {
    let config = iproto().build().map_err(|e| e.to_string())?;
    let mut decoder = Decoder::new(&config);
    let mut space = Space::new();
    space.insert(
        1u32.to_le_bytes().to_vec(),
        vec![1u32.to_le_bytes().to_vec(), b"hi".to_vec()],
    );
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        let Some(read) = chunk.get(..n).filter(|r| !r.is_empty()) else {
            // End of stream: fine between packets only.
            return match decoder.decode_eof(&mut buf) {
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
        };
        buf.extend_from_slice(read);
        let mut replies = Vec::new();
        while let Some(decoded) = decoder.decode(&mut buf).map_err(|e| e.to_string())? {
            let Decoded::Frame(frame) = decoded else {
                continue;
            };
            let mut header = Reader(&frame);
            let (kind, _len, id) = (header.u32()?, header.u32()?, header.u32()?);
            let body = answer(kind, header.0, &mut space).unwrap_or_default();
            replies.push(packet(kind, id, &body)?);
        }
        for reply in replies.iter().rev() {
            let (a, b) = reply.split_at(5.min(reply.len()));
            stream.write_all(a).map_err(|e| format!("write: {e}"))?;
            thread::sleep(Duration::from_millis(2));
            stream.write_all(b).map_err(|e| format!("write: {e}"))?;
        }
    }
}

fn serve(listener: TcpListener) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let peer = stream
                .peer_addr()
                .map_or_else(|_| "?".into(), |a| a.to_string());
            match serve_connection(stream) {
                Ok(()) => eprintln!("{peer}: closed"),
                Err(e) => eprintln!("{peer}: dropped: {e}"),
            }
        });
    }
}

/// The first of the client's request ids: three below 2^32, so the
/// 32-bit ids wrap to 0 within the script.
const FIRST_ID: u32 = u32::MAX - 2;

/// A request of the script, and how to describe it.
struct Request {
    kind: u32,
    body: Vec<u8>,
    what: String,
}

fn u32_field(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn select_request(space_no: u32, key: u32) -> Request {
    let mut body = Vec::new();
    for v in [space_no, 0, 0, u32::MAX, 1] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    put_tuple(&[u32_field(key)], &mut body);
    Request {
        kind: SELECT,
        body,
        what: format!("select (space {space_no}, key {key})"),
    }
}

fn insert_request(flags: u32, key: u32, text: &str) -> Request {
    let mut body = Vec::new();
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&flags.to_le_bytes());
    put_tuple(&[u32_field(key), text.as_bytes().to_vec()], &mut body);
    Request {
        kind: INSERT,
        body,
        what: format!("insert (space 0, [{key}, {text:?}])"),
    }
}

/// A field as Tarantool's console shows it: 4 bytes as a number.
fn show_field(field: &[u8]) -> String {
    match (<[u8; 4]>::try_from(field), std::str::from_utf8(field)) {
        (Ok(n), _) => u32::from_le_bytes(n).to_string(),
        (_, Ok(s)) => format!("{s:?}"),
        _ => field.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// Describes a reply body to a request of type `kind`.
fn show_reply(kind: u32, body: &[u8]) -> Result<String, String> {
    if kind == PING {
        return Ok("ok".into());
    }
    let mut r = Reader(body);
    let code = r.u32()?;
    if code != 0 {
        let message = r.0.split(|&b| b == 0).next().unwrap_or_default();
        return Ok(format!(
            "error {code:#06x}: {}",
            String::from_utf8_lossy(message)
        ));
    }
    let count = r.u32()?;
    let mut tuples = Vec::new();
    // Insert without BOX_RETURN_TUPLE carries the count alone.
    while !r.0.is_empty() {
        let size = r.u32()? as usize;
        let mut tuple = Reader(r.take(size.checked_add(4).ok_or("tuple size")?)?);
        let fields = tuple.tuple()?;
        tuple.end()?;
        let shown: Vec<String> = fields.iter().map(|f| show_field(f)).collect();
        tuples.push(format!("[{}]", shown.join(", ")));
    }
    Ok(format!("{count} tuple(s) {}", tuples.join(" "))
        .trim_end()
        .to_string())
}

/// Pipelines the script's requests in one write, then matches the replies.
fn client(addr: &str) -> Result<Vec<String>, String> {
    let script = [
        Request {
            kind: PING,
            body: Vec::new(),
            what: "ping".into(),
        },
        select_request(0, 1),
        insert_request(BOX_ADD | BOX_RETURN_TUPLE, 2, "there"),
        select_request(0, 2),
        insert_request(BOX_ADD, 1, "again"),
        select_request(9, 1),
        Request {
            kind: PING,
            body: Vec::new(),
            what: "ping".into(),
        },
    ];
    let ids = correlate::Config::builder()
        .ids(0..=u64::from(u32::MAX))
        .start_at(u64::from(FIRST_ID))
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let mut requests = Correlator::new(ids);
    let config = iproto()
        .idle_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let mut conn = Connection::new(config);
    let now = Instant::now();
    for (i, request) in script.iter().enumerate() {
        let id = requests
            .start(i, now)
            .map_err(|e| format!("{:?}", e.kind()))?;
        // The ids lie in 0..=u32::MAX: the wire's 32 bits hold them.
        let wire = u32::try_from(id).map_err(|e| e.to_string())?;
        // The id follows the length field; the body follows the id.
        let parts = [&wire.to_le_bytes()[..], &request.body];
        conn.send_parts_with_header(&request.kind.to_le_bytes(), parts)
            .map_err(|e| e.to_string())?;
    }
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    let mut answers: Vec<Option<(u32, String)>> = script.iter().map(|_| None).collect();
    let mut arrival = Vec::new();
    let mut problems = Vec::new();
    let failure = blocking::drive(&mut stream, &mut conn, |conn, event| {
        let Event::Frame(frame) = event else { return };
        let mut header = Reader(&frame);
        let (Ok(kind), Ok(_), Ok(id)) = (header.u32(), header.u32(), header.u32()) else {
            return;
        };
        arrival.push(id.to_string());
        let Some(i) = requests.reply(u64::from(id)) else {
            problems.push(format!("reply with unknown id {id}"));
            return;
        };
        let shown = match script.get(i) {
            Some(r) if r.kind == kind => {
                show_reply(kind, header.0).unwrap_or_else(|e| format!("malformed: {e}"))
            }
            _ => format!("reply of type {kind} to another request type"),
        };
        if let Some(slot) = answers.get_mut(i) {
            *slot = Some((id, shown));
        }
        if requests.in_flight() == 0 {
            conn.close();
        }
    })
    .map_err(|e| format!("i/o: {e}"))?;
    if let Some(e) = failure {
        return Err(format!("the server broke the framing: {e}"));
    }
    // Whatever is still waiting got no reply before the connection ended.
    requests.handle_timeout(Instant::now() + Duration::from_secs(3600));
    while let Some(Outcome::TimedOut { id, token }) = requests.poll_outcome() {
        problems.push(format!("no reply to request {token} (id {id})"));
    }
    let mut lines: Vec<String> = script
        .iter()
        .zip(&answers)
        .filter_map(|(r, a)| {
            a.as_ref()
                .map(|(id, shown)| format!("{} id {id}: {shown}", r.what))
        })
        .collect();
    lines.push(format!("arrival order: {}", arrival.join(" ")));
    if problems.is_empty() {
        Ok(lines)
    } else {
        Err(format!("{}\n{}", lines.join("\n"), problems.join("\n")))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("server"), Some(addr)) => match TcpListener::bind(addr) {
            Ok(listener) => {
                if let Ok(local) = listener.local_addr() {
                    println!("tarantool 1.5 iproto on {local}");
                }
                serve(listener);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bind {addr}: {e}");
                ExitCode::FAILURE
            }
        },
        (Some("client"), Some(addr)) => match client(addr) {
            Ok(lines) => {
                for line in lines {
                    println!("{line}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("client: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: tarantool server ADDR | client ADDR");
            ExitCode::from(2)
        }
    }
}
