//! permessage-deflate (RFC 7692): negotiation and the per-message transform.
//!
//! Turn it on with [`Config::with_deflate`](super::Config::with_deflate):
//!
//! ```
//! use sansproto::ws::{Config, DeflateConfig};
//! // Accept browsers' default offer, but cap memory per connection.
//! let config = Config::default()
//!     .with_deflate(DeflateConfig::default().with_server_no_context_takeover(true));
//! # let _ = config;
//! ```
//!
//! # Memory per connection
//!
//! A compressor keeps its window (`2^w` bytes, twice), hash chains and
//! zlib's hash table and buffers (fixed by zlib's default memory level, not
//! by the window); a decompressor keeps its `2^w`-byte window and about
//! 7 KiB of state. With context takeover both live for the whole connection.
//! Without it (the `*_no_context_takeover` parameters) each is created for a
//! message and dropped at its end, so an idle connection holds none.
//! Measured by the `memory_per_idle_connection` test (heap bytes one
//! connection holds after exchanging messages, both directions compressed):
//!
//! | negotiated | idle connection |
//! |---|---|
//! | full windows (`w = 15`), context takeover | about 420 KiB |
//! | `server_max_window_bits=9; client_max_window_bits=9` | about 295 KiB |
//! | `server_no_context_takeover; client_no_context_takeover` | about 7 KiB |
//!
//! # Window bits 8
//!
//! zlib cannot run its compressor with a 256-byte window; with a 512-byte
//! window (`w = 9`) it never emits distances beyond 250 bytes, so its output
//! is valid for a peer that allowed only `w = 8`. Negotiated values of 8 are
//! therefore run as 9, both for compressing and decompressing.

use super::extension::{Extension, ExtensionError, ExtensionFactory, ExtensionOffer};
use super::frame::{OpCode, RSV1};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The extension token.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The four bytes a sync flush ends with; stripped on send, appended on receive.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Output is produced in steps of this many bytes, so a decompression bomb
/// is caught at most one step past the limit.
const STEP: usize = 32 * 1024;

/// permessage-deflate settings and negotiation policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Compression level, 0–9. Default 6 (zlib's default).
    pub level: u32,
    /// Messages shorter than this are sent uncompressed. Default 32 bytes.
    pub threshold: usize,
    /// Server: always reset the server's compressor between messages (and
    /// say so). Client: ask the server to do so.
    pub server_no_context_takeover: bool,
    /// Server: require the client to reset its compressor between messages.
    /// Client: offer to, and do so.
    pub client_no_context_takeover: bool,
    /// Largest window (8–15) for the server's compressor. A server uses at
    /// most this; a client asks for it when below 15.
    pub server_max_window_bits: u8,
    /// Largest window (8–15) for the client's compressor. A server asks for
    /// it when below 15 (and declines clients that cannot honour it); a
    /// client uses at most this.
    pub client_max_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            level: 6,
            threshold: 32,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

impl DeflateConfig {
    /// Sets [`DeflateConfig::level`] (clamped to 9).
    pub fn with_level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Sets [`DeflateConfig::threshold`].
    pub fn with_threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// Sets [`DeflateConfig::server_no_context_takeover`].
    pub fn with_server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = on;
        self
    }

    /// Sets [`DeflateConfig::client_no_context_takeover`].
    pub fn with_client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }

    /// Sets [`DeflateConfig::server_max_window_bits`] (clamped to 8–15).
    pub fn with_server_max_window_bits(mut self, bits: u8) -> Self {
        self.server_max_window_bits = bits.clamp(8, 15);
        self
    }

    /// Sets [`DeflateConfig::client_max_window_bits`] (clamped to 8–15).
    pub fn with_client_max_window_bits(mut self, bits: u8) -> Self {
        self.client_max_window_bits = bits.clamp(8, 15);
        self
    }
}

/// The negotiated parameters of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (offers only).
    client_max_window_bits: Option<Option<u8>>,
}

impl Params {
    /// Reads the parameters of one offer or response; `None` when a
    /// parameter is unknown, repeated or has a bad value.
    fn parse(o: &ExtensionOffer) -> Option<Self> {
        let mut p = Self::default();
        let mut seen = [false; 4];
        for (name, value) in &o.params {
            let slot = match name.as_str() {
                "server_no_context_takeover" => 0,
                "client_no_context_takeover" => 1,
                "server_max_window_bits" => 2,
                "client_max_window_bits" => 3,
                _ => return None,
            };
            if std::mem::replace(&mut seen[slot], true) {
                return None;
            }
            let bits = || -> Option<u8> {
                let v = value.as_deref()?;
                if v.is_empty()
                    || v.len() > 2
                    || !v.bytes().all(|b| b.is_ascii_digit())
                    || v.starts_with('0')
                {
                    return None;
                }
                v.parse::<u8>().ok().filter(|b| (8..=15).contains(b))
            };
            match slot {
                0 | 1 if value.is_some() => return None,
                0 => p.server_no_context_takeover = true,
                1 => p.client_no_context_takeover = true,
                2 => p.server_max_window_bits = Some(bits()?),
                _ => {
                    p.client_max_window_bits = Some(match value {
                        None => None,
                        Some(_) => Some(bits()?),
                    })
                }
            }
        }
        Some(p)
    }

    fn to_offer(self) -> ExtensionOffer {
        let mut params = Vec::new();
        if self.server_no_context_takeover {
            params.push(("server_no_context_takeover".to_owned(), None));
        }
        if self.client_no_context_takeover {
            params.push(("client_no_context_takeover".to_owned(), None));
        }
        if let Some(b) = self.server_max_window_bits {
            params.push(("server_max_window_bits".to_owned(), Some(b.to_string())));
        }
        if let Some(b) = self.client_max_window_bits {
            params.push((
                "client_max_window_bits".to_owned(),
                b.map(|b| b.to_string()),
            ));
        }
        ExtensionOffer {
            name: PERMESSAGE_DEFLATE.to_owned(),
            params,
        }
    }
}

/// Negotiates permessage-deflate; put it in
/// [`Config::extensions`](super::Config::extensions) (or use
/// [`Config::with_deflate`](super::Config::with_deflate)).
#[derive(Debug, Clone, Default)]
pub struct PerMessageDeflate {
    config: DeflateConfig,
}

impl PerMessageDeflate {
    /// A negotiator with these settings.
    pub fn new(config: DeflateConfig) -> Self {
        let mut config = config;
        config.level = config.level.min(9);
        config.server_max_window_bits = config.server_max_window_bits.clamp(8, 15);
        config.client_max_window_bits = config.client_max_window_bits.clamp(8, 15);
        Self { config }
    }

    /// Server side: the response to one offer, or `None` to decline it.
    fn answer(&self, offer: &Params) -> Option<Params> {
        let c = &self.config;
        let mut r = Params {
            server_no_context_takeover: offer.server_no_context_takeover
                || c.server_no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover
                || c.client_no_context_takeover,
            ..Params::default()
        };
        let server_bits = offer
            .server_max_window_bits
            .unwrap_or(15)
            .min(c.server_max_window_bits);
        if offer.server_max_window_bits.is_some() || server_bits < 15 {
            r.server_max_window_bits = Some(server_bits);
        }
        match offer.client_max_window_bits {
            Some(offered) => {
                let bits = offered.unwrap_or(15).min(c.client_max_window_bits);
                if bits < 15 || offered.is_some() {
                    r.client_max_window_bits = Some(Some(bits));
                }
            }
            // The client cannot be limited: decline if the policy needs to.
            None if c.client_max_window_bits < 15 => return None,
            None => {}
        }
        Some(r)
    }
}

impl ExtensionFactory for PerMessageDeflate {
    fn name(&self) -> &str {
        PERMESSAGE_DEFLATE
    }

    fn offer(&self) -> ExtensionOffer {
        let c = &self.config;
        Params {
            server_no_context_takeover: c.server_no_context_takeover,
            client_no_context_takeover: c.client_no_context_takeover,
            server_max_window_bits: (c.server_max_window_bits < 15)
                .then_some(c.server_max_window_bits),
            client_max_window_bits: Some(
                (c.client_max_window_bits < 15).then_some(c.client_max_window_bits),
            ),
        }
        .to_offer()
    }

    fn accept_offer(
        &self,
        offers: &[&ExtensionOffer],
    ) -> Option<(ExtensionOffer, Box<dyn Extension>)> {
        offers.iter().find_map(|o| {
            let r = self.answer(&Params::parse(o)?)?;
            let ext = Deflate::new(
                self.config.level,
                self.config.threshold,
                Side {
                    no_context_takeover: r.server_no_context_takeover,
                    window_bits: r.server_max_window_bits.unwrap_or(15),
                },
                Side {
                    no_context_takeover: r.client_no_context_takeover,
                    window_bits: r.client_max_window_bits.flatten().unwrap_or(15),
                },
            );
            Some((r.to_offer(), Box::new(ext) as Box<dyn Extension>))
        })
    }

    fn accept_response(&self, response: &ExtensionOffer) -> Result<Box<dyn Extension>, String> {
        let r = Params::parse(response).ok_or_else(|| format!("bad parameters in {response}"))?;
        let c = &self.config;
        if c.server_no_context_takeover && !r.server_no_context_takeover {
            return Err("server_no_context_takeover was requested but not accepted".into());
        }
        let server_bits = r.server_max_window_bits.unwrap_or(15);
        if c.server_max_window_bits < 15 && server_bits > c.server_max_window_bits {
            return Err("server_max_window_bits larger than requested".into());
        }
        let client_bits = match r.client_max_window_bits {
            Some(Some(b)) => b.min(c.client_max_window_bits),
            Some(None) => return Err("client_max_window_bits without a value".into()),
            None => c.client_max_window_bits,
        };
        Ok(Box::new(Deflate::new(
            c.level,
            c.threshold,
            Side {
                no_context_takeover: r.client_no_context_takeover || c.client_no_context_takeover,
                window_bits: client_bits,
            },
            Side {
                no_context_takeover: r.server_no_context_takeover,
                window_bits: server_bits,
            },
        )))
    }
}

/// One direction's negotiated parameters.
#[derive(Debug, Clone, Copy)]
struct Side {
    no_context_takeover: bool,
    window_bits: u8,
}

impl Side {
    /// zlib's usable window for a negotiated value (see the module docs).
    fn zlib_bits(self) -> u8 {
        self.window_bits.clamp(9, 15)
    }
}

/// The transform of one connection.
struct Deflate {
    level: u32,
    threshold: usize,
    /// This side's compressor.
    out: Side,
    /// The peer's compressor, which this side's decompressor follows.
    inp: Side,
    compress: Option<Compress>,
    decompress: Option<Decompress>,
}

impl Deflate {
    fn new(level: u32, threshold: usize, out: Side, inp: Side) -> Self {
        Self {
            level,
            threshold,
            out,
            inp,
            compress: None,
            decompress: None,
        }
    }

    fn inflate(
        d: &mut Decompress,
        mut input: &[u8],
        out: &mut Vec<u8>,
        produced: &mut usize,
        max_out: usize,
    ) -> Result<(), ExtensionError> {
        let mut step = [0u8; STEP];
        loop {
            let before_in = d.total_in();
            let before_out = d.total_out();
            let status = d
                .decompress(input, &mut step, FlushDecompress::Sync)
                .map_err(|e| ExtensionError::InvalidData(format!("inflate: {e}")))?;
            let used = (d.total_in() - before_in) as usize;
            let made = (d.total_out() - before_out) as usize;
            input = input.get(used..).unwrap_or_default();
            *produced += made;
            if *produced > max_out {
                return Err(ExtensionError::TooBig);
            }
            out.extend_from_slice(&step[..made]);
            if used == 0 && made == 0 {
                if input.is_empty() {
                    return Ok(());
                }
                return Err(ExtensionError::InvalidData(
                    "inflate made no progress".into(),
                ));
            }
            match status {
                Status::StreamEnd => {
                    if input.is_empty() {
                        return Ok(());
                    }
                    return Err(ExtensionError::InvalidData(
                        "data after the final deflate block".into(),
                    ));
                }
                _ if input.is_empty() && made < STEP => return Ok(()),
                _ => {}
            }
        }
    }
}

impl Extension for Deflate {
    fn name(&self) -> &str {
        PERMESSAGE_DEFLATE
    }

    fn rsv_bits(&self) -> u8 {
        RSV1
    }

    fn decode(
        &mut self,
        rsv: u8,
        data: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        max_out: usize,
    ) -> Result<(), ExtensionError> {
        if rsv & RSV1 == 0 {
            if data.len() > max_out {
                return Err(ExtensionError::TooBig);
            }
            out.extend_from_slice(data);
            return Ok(());
        }
        let bits = self.inp.zlib_bits();
        let d = self
            .decompress
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
        let mut produced = 0;
        Self::inflate(d, data, out, &mut produced, max_out)?;
        if fin {
            Self::inflate(d, &TAIL, out, &mut produced, max_out)?;
            if self.inp.no_context_takeover {
                self.decompress = None;
            }
        }
        Ok(())
    }

    fn encode(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<u8>, ExtensionError> {
        if opcode.is_control() || payload.len() < self.threshold {
            return Ok(None);
        }
        let (level, bits) = (self.level, self.out.zlib_bits());
        let c = self.compress.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(level), false, bits)
        });
        let start = out.len();
        out.reserve(payload.len() / 2 + 64);
        let mut input = payload;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(STEP));
            }
            let before_in = c.total_in();
            let before_out = c.total_out();
            c.compress_vec(input, out, FlushCompress::Sync)
                .map_err(|e| ExtensionError::InvalidData(format!("deflate: {e}")))?;
            let used = (c.total_in() - before_in) as usize;
            input = input.get(used..).unwrap_or_default();
            let made = c.total_out() - before_out;
            // Done when all input is in and the flush left spare room (or a
            // repeated flush had nothing more to write).
            if input.is_empty() && (out.len() < out.capacity() || made == 0) {
                break;
            }
            if used == 0 && made == 0 && out.len() < out.capacity() {
                return Err(ExtensionError::InvalidData(
                    "deflate made no progress".into(),
                ));
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.len() == start {
            out.push(0x00);
        }
        if self.out.no_context_takeover {
            self.compress = None;
        }
        Ok(Some(RSV1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(s: &str) -> ExtensionOffer {
        ExtensionOffer::parse_list(s).unwrap().remove(0)
    }

    #[test]
    fn parameters_are_validated() {
        assert!(Params::parse(&offer("permessage-deflate; client_max_window_bits")).is_some());
        for bad in [
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        ] {
            assert!(Params::parse(&offer(bad)).is_none(), "{bad}");
        }
    }

    #[test]
    fn server_answers() {
        let f = PerMessageDeflate::new(DeflateConfig::default());
        let o = offer("permessage-deflate; client_max_window_bits");
        let (r, _) = f.accept_offer(&[&o]).unwrap();
        assert_eq!(r.to_string(), "permessage-deflate");
        let o = offer("permessage-deflate; server_no_context_takeover; server_max_window_bits=9");
        let (r, _) = f.accept_offer(&[&o]).unwrap();
        assert_eq!(
            r.to_string(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
        );
        // An offer with an unknown parameter is declined; the next one is taken.
        let bad = offer("permessage-deflate; x=1");
        let good = offer("permessage-deflate");
        assert!(f.accept_offer(&[&bad, &good]).is_some());
        assert!(f.accept_offer(&[&bad]).is_none());
        // A server that caps the client's window declines clients that cannot be capped.
        let capped = PerMessageDeflate::new(DeflateConfig {
            client_max_window_bits: 10,
            ..DeflateConfig::default()
        });
        assert!(capped.accept_offer(&[&good]).is_none());
        let o = offer("permessage-deflate; client_max_window_bits");
        let (r, _) = capped.accept_offer(&[&o]).unwrap();
        assert_eq!(
            r.to_string(),
            "permessage-deflate; client_max_window_bits=10"
        );
    }

    #[test]
    fn client_checks_the_response() {
        let f = PerMessageDeflate::new(DeflateConfig {
            server_no_context_takeover: true,
            ..DeflateConfig::default()
        });
        assert_eq!(
            f.offer().to_string(),
            "permessage-deflate; server_no_context_takeover; client_max_window_bits"
        );
        assert!(f.accept_response(&offer("permessage-deflate")).is_err());
        assert!(f
            .accept_response(&offer("permessage-deflate; server_no_context_takeover"))
            .is_ok());
        assert!(f
            .accept_response(&offer(
                "permessage-deflate; server_no_context_takeover; client_max_window_bits=8"
            ))
            .is_ok());
        assert!(f
            .accept_response(&offer(
                "permessage-deflate; server_no_context_takeover; client_max_window_bits"
            ))
            .is_err());
    }

    fn pair(no_ctx: bool) -> (Deflate, Deflate) {
        let side = Side {
            no_context_takeover: no_ctx,
            window_bits: 15,
        };
        (
            Deflate::new(6, 0, side, side),
            Deflate::new(6, 0, side, side),
        )
    }

    #[test]
    fn rfc7692_hello_vectors() {
        // §7.2.3.1 and §7.2.3.2: "Hello" twice with context takeover.
        let (mut a, mut b) = pair(false);
        let mut out = Vec::new();
        assert_eq!(a.encode(OpCode::Text, b"Hello", &mut out), Ok(Some(RSV1)));
        assert_eq!(out, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        let mut second = Vec::new();
        a.encode(OpCode::Text, b"Hello", &mut second).unwrap();
        assert_eq!(second, [0xf2, 0x00, 0x11, 0x00, 0x00]);
        let mut dec = Vec::new();
        b.decode(RSV1, &out, true, &mut dec, 100).unwrap();
        b.decode(RSV1, &second, true, &mut dec, 100).unwrap();
        assert_eq!(dec, b"HelloHello");
        // Without context takeover both messages compress alike.
        let (mut a, _) = pair(true);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        a.encode(OpCode::Text, b"Hello", &mut x).unwrap();
        a.encode(OpCode::Text, b"Hello", &mut y).unwrap();
        assert_eq!(x, y);
        // §7.2.3.3 empty block, §7.2.3.4 stored block, §7.2.3.5 two blocks.
        for (wire, want) in [
            (&[0x00][..], &b""[..]),
            (
                &[
                    0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
                ],
                b"Hello",
            ),
            (
                &[
                    0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
                ],
                b"Hello",
            ),
        ] {
            let (_, mut b) = pair(true);
            let mut dec = Vec::new();
            b.decode(RSV1, wire, true, &mut dec, 100).unwrap();
            assert_eq!(dec, want);
        }
    }

    #[test]
    fn encode_terminates_whatever_room_the_output_has() {
        // The flush may fill the output exactly; a second flush then writes
        // nothing, which must end the loop rather than spin.
        let payload: Vec<u8> = (0..600u32).map(|i| (i * 7 % 251) as u8).collect();
        for cap in 0..400 {
            let (mut a, mut b) = pair(false);
            let mut out = Vec::with_capacity(cap);
            assert_eq!(a.encode(OpCode::Binary, &payload, &mut out), Ok(Some(RSV1)));
            let mut dec = Vec::new();
            b.decode(RSV1, &out, true, &mut dec, 1 << 20).unwrap();
            assert_eq!(dec, payload, "capacity {cap}");
        }
    }

    #[test]
    fn bomb_stops_at_the_limit() {
        let (mut a, mut b) = pair(true);
        let big = vec![b'a'; 4 << 20];
        let mut wire = Vec::new();
        a.encode(OpCode::Binary, &big, &mut wire).unwrap();
        assert!(wire.len() < 16 << 10);
        let mut dec = Vec::new();
        assert_eq!(
            b.decode(RSV1, &wire, true, &mut dec, 1 << 20),
            Err(ExtensionError::TooBig)
        );
        assert!(dec.len() <= (1 << 20) + STEP);
    }
}
