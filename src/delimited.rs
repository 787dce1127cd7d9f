//! Delimiter framing: frames that end with a delimiter byte sequence, such
//! as newline-delimited JSON (Netty's `DelimiterBasedFrameDecoder` and
//! `LineBasedFrameDecoder`, tokio-util's `AnyDelimiterCodec` and
//! `LinesCodec`).
//!
//! The [`Decoder`] works on the caller's `BytesMut`, as
//! [`prefix::Decoder`](crate::prefix::Decoder) does, and takes only the
//! frames it returns from it. So a stream can change its framing between two
//! frames, even in the middle of one read: once the frame that announces the
//! change is decoded, the bytes after it are still in the buffer, and the
//! next decoder (a length-prefix one, say) starts on them.
//!
//! ```
//! use bytes::BytesMut;
//! use sansproto::delimited::{Config, Decoder};
//! use sansproto::prefix::{self, Decoded};
//!
//! // Two JSON lines, then length-prefixed frames, all in one read.
//! let mut buf = BytesMut::from(&b"{\"hello\":1}\r\n{\"mode\":\"binary\"}\n\x00\x00\x00\x02hi"[..]);
//! let mut lines = Decoder::new(&Config::lines());
//! assert_eq!(lines.decode(&mut buf)?, Some(Decoded::Frame("{\"hello\":1}".into())));
//! assert_eq!(lines.decode(&mut buf)?, Some(Decoded::Frame("{\"mode\":\"binary\"}".into())));
//! // The switch: what follows is framed by a 4-byte length.
//! let mut frames = prefix::Decoder::new(&prefix::Config::default());
//! assert_eq!(frames.decode(&mut buf)?, Some(Decoded::Frame("hi".into())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::prefix::{DecodeError, Decoded};
use bytes::{Buf, Bytes, BytesMut};

/// The default frame limit: 64 KiB, delimiter excluded.
pub const DEFAULT_MAX_FRAME_LENGTH: usize = 64 * 1024;

/// A delimiter framing, validated once by [`Builder::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    delimiter: Bytes,
    max_frame_length: usize,
    strip_delimiter: bool,
    trim_cr: bool,
    discard: bool,
}

impl Config {
    /// A builder, starting from `\n` as the delimiter.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Lines: `\n`-terminated, the terminator and a `\r` before it removed,
    /// at most [`DEFAULT_MAX_FRAME_LENGTH`] bytes.
    pub fn lines() -> Self {
        Builder::default().trim_cr(true).assemble()
    }

    /// The delimiter.
    pub fn delimiter(&self) -> &[u8] {
        &self.delimiter
    }

    /// The longest frame, delimiter excluded.
    pub fn max_frame_length(&self) -> usize {
        self.max_frame_length
    }
}

/// Builds a [`Config`].
#[derive(Debug, Clone)]
pub struct Builder {
    delimiter: Bytes,
    max_frame_length: usize,
    strip_delimiter: bool,
    trim_cr: bool,
    discard: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            delimiter: Bytes::from_static(b"\n"),
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            strip_delimiter: true,
            trim_cr: false,
            discard: false,
        }
    }
}

impl Builder {
    /// The byte sequence that ends each frame (default `\n`).
    pub fn delimiter(mut self, delimiter: impl Into<Bytes>) -> Self {
        self.delimiter = delimiter.into();
        self
    }

    /// The longest frame, delimiter excluded (default 64 KiB): what is
    /// handed out, so with [`trim_cr`](Self::trim_cr) a `\r\n` line may
    /// hold this many bytes before its `\r`. A frame that grows past it
    /// fails the stream with [`DecodeError::FrameTooLong`]
    /// (its `length` one past the limit: a delimited frame's length is not
    /// known before its end), or with
    /// [`discard_too_long_frames`](Self::discard_too_long_frames) is skipped;
    /// either way no more than the limit and the delimiter (and the `\r`
    /// that `trim_cr` removes) is ever held, and
    /// each byte is searched once (the last few of a read, that could start
    /// the delimiter, once more).
    pub fn max_frame_length(mut self, max: usize) -> Self {
        self.max_frame_length = max;
        self
    }

    /// Whether frames are handed out without their delimiter (default true).
    pub fn strip_delimiter(mut self, strip: bool) -> Self {
        self.strip_delimiter = strip;
        self
    }

    /// With the delimiter stripped, also remove one `\r` before it (for
    /// lines that end in `\r\n` or `\n`). Default false.
    pub fn trim_cr(mut self, trim: bool) -> Self {
        self.trim_cr = trim;
        self
    }

    /// Skip frames over the limit instead of failing: their bytes are
    /// dropped as they arrive, and [`Decoded::Discarded`] reports each one
    /// once its delimiter arrives. Default false.
    pub fn discard_too_long_frames(mut self, discard: bool) -> Self {
        self.discard = discard;
        self
    }

    /// Checks the settings and builds the [`Config`].
    pub fn build(self) -> Result<Config, ConfigError> {
        if self.delimiter.is_empty() {
            return Err(ConfigError::EmptyDelimiter);
        }
        if self.max_frame_length == 0 {
            return Err(ConfigError::ZeroMaxFrameLength);
        }
        Ok(self.assemble())
    }

    fn assemble(self) -> Config {
        Config {
            delimiter: self.delimiter,
            max_frame_length: self.max_frame_length,
            strip_delimiter: self.strip_delimiter,
            trim_cr: self.trim_cr,
            discard: self.discard,
        }
    }
}

/// Why a [`Builder`] refused to build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An empty delimiter would end a frame everywhere.
    #[error("the delimiter is empty")]
    EmptyDelimiter,
    /// A limit of zero would refuse every non-empty frame.
    #[error("the max frame length must be at least one byte")]
    ZeroMaxFrameLength,
}

/// Where the decoder is in the stream.
#[derive(Debug, Clone)]
enum State {
    /// Looking for the delimiter; the bytes before `searched` hold none.
    Frame { searched: usize },
    /// Skipping an over-long frame: `dropped` bytes so far.
    Discarding { dropped: u64 },
    /// The stream failed.
    Failed(DecodeError),
}

/// The incremental delimiter decoder.
#[derive(Debug, Clone)]
pub struct Decoder {
    config: Config,
    state: State,
}

impl Decoder {
    /// A decoder for `config`.
    pub fn new(config: &Config) -> Self {
        Self {
            config: config.clone(),
            state: State::Frame { searched: 0 },
        }
    }

    /// Takes the next frame (or discard report) from the front of `src`.
    ///
    /// Returns `Ok(None)` when `src` holds no whole frame yet: append more
    /// bytes and call again. Bytes are scanned once (but for the last few of
    /// a read, which may start the delimiter). On error `src`
    /// is emptied, and the same error is returned from every later call.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        let delimiter_len = self.config.delimiter.len();
        let max = self.config.max_frame_length;
        match self.state {
            State::Failed(ref e) => {
                let e = e.clone();
                src.clear();
                Err(e)
            }
            State::Discarding { dropped } => match self.find(src, 0) {
                Some(at) => {
                    src.advance(at + delimiter_len);
                    self.state = State::Frame { searched: 0 };
                    let length = dropped.saturating_add(at as u64);
                    Ok(Some(Decoded::Discarded { length }))
                }
                None => {
                    // Keep what could be the start of the delimiter.
                    let keep = (delimiter_len - 1).min(src.len());
                    let drop = src.len() - keep;
                    src.advance(drop);
                    self.state = State::Discarding {
                        dropped: dropped.saturating_add(drop as u64),
                    };
                    Ok(None)
                }
            },
            State::Frame { searched } => {
                // A frame, the `\r` trimmed off it, and the delimiter:
                // nothing past this is searched.
                let window = self.window();
                let end = src.len().min(window);
                match self.find(src.get(..end).unwrap_or(src), searched) {
                    Some(at) if at - self.trimmed(src, at) <= max => {
                        self.state = State::Frame { searched: 0 };
                        Ok(Some(Decoded::Frame(self.take(src, at))))
                    }
                    // One byte over, with no `\r` to trim: its end is here.
                    Some(at) => self.too_long_ending_at(src, at),
                    // No delimiter where one must be: over the limit.
                    None if src.len() >= window => self.too_long(src),
                    None => {
                        self.state = State::Frame {
                            searched: (src.len() + 1).saturating_sub(delimiter_len),
                        };
                        Ok(None)
                    }
                }
            }
        }
    }

    /// Like [`Decoder::decode`], for when the stream has ended: once no
    /// whole frame is left, bytes still buffered are an error
    /// ([`DecodeError::Truncated`]) saying how much was lost.
    pub fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        if let Some(decoded) = self.decode(src)? {
            return Ok(Some(decoded));
        }
        // A frame being skipped counts whole: its end never came.
        let buffered = match self.state {
            State::Discarding { dropped } => usize::try_from(dropped)
                .unwrap_or(usize::MAX)
                .saturating_add(src.len()),
            _ => src.len(),
        };
        src.clear();
        self.state = State::Frame { searched: 0 };
        if buffered == 0 {
            return Ok(None);
        }
        let e = DecodeError::Truncated {
            buffered,
            frame_length: None,
        };
        self.state = State::Failed(e.clone());
        Err(e)
    }

    /// The error the stream failed with, if it did.
    pub fn error(&self) -> Option<&DecodeError> {
        match &self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// True while the rest of an over-long frame is being skipped.
    pub fn is_discarding(&self) -> bool {
        matches!(self.state, State::Discarding { .. })
    }

    /// Where the delimiter starts in `src`, looking from `from` on.
    fn find(&self, src: &[u8], from: usize) -> Option<usize> {
        let delimiter = &self.config.delimiter[..];
        let rest = src.get(from..)?;
        let found = match delimiter {
            [byte] => rest.iter().position(|b| b == byte),
            _ => rest.windows(delimiter.len()).position(|w| w == delimiter),
        };
        found.map(|at| at + from)
    }

    /// How far a frame and its delimiter can reach: the limit, a `\r`
    /// that is trimmed off (it is not part of the frame handed out), and
    /// the delimiter.
    fn window(&self) -> usize {
        let trims = usize::from(self.config.strip_delimiter && self.config.trim_cr);
        self.config
            .max_frame_length
            .saturating_add(trims)
            .saturating_add(self.config.delimiter.len())
    }

    /// 1 when the frame before a delimiter at `at` ends in a `\r` that is
    /// trimmed off it, else 0.
    fn trimmed(&self, src: &[u8], at: usize) -> usize {
        let trims = self.config.strip_delimiter && self.config.trim_cr;
        usize::from(trims && src.get(..at).is_some_and(|f| f.ends_with(b"\r")))
    }

    /// Splits off the frame that ends at `at`, with its delimiter, and
    /// strips what the configuration says.
    fn take(&self, src: &mut BytesMut, at: usize) -> Bytes {
        let cr = self.trimmed(src, at);
        let with_delimiter = src.split_to(at + self.config.delimiter.len());
        let mut frame = with_delimiter.freeze();
        if self.config.strip_delimiter {
            frame.truncate(at - cr);
        }
        frame
    }

    /// The frame before a delimiter at `at` is over the limit: skipped
    /// whole, delimiter included, or the stream fails.
    fn too_long_ending_at(
        &mut self,
        src: &mut BytesMut,
        at: usize,
    ) -> Result<Option<Decoded>, DecodeError> {
        if !self.config.discard {
            return self.too_long(src);
        }
        src.advance(at + self.config.delimiter.len());
        self.state = State::Frame { searched: 0 };
        Ok(Some(Decoded::Discarded { length: at as u64 }))
    }

    /// The frame at the front of `src` is over the limit (its delimiter is
    /// not within the limit's reach).
    fn too_long(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        if self.config.discard {
            // Dropped from the start, reported with its length at its end.
            // The window was searched: what cannot start the delimiter goes
            // at once, and the search goes on after it.
            let searched = self.window().min(src.len()) + 1 - self.config.delimiter.len();
            src.advance(searched);
            self.state = State::Discarding {
                dropped: searched as u64,
            };
            return self.decode(src);
        }
        // Its length is not known before its end: one past the limit is
        // what was seen.
        let max = self.config.max_frame_length;
        let e = DecodeError::FrameTooLong {
            length: (max as u64).saturating_add(1),
            max,
        };
        src.clear();
        self.state = State::Failed(e.clone());
        Err(e)
    }
}
