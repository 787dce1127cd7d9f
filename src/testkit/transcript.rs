//! The transcript: what two machines (or one) did, in order, with the
//! virtual time of each step, and its text form.

use super::Side;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The first line of every transcript.
const HEADER: &str = "# sansproto transcript v1";

/// A record of what machines wrote, read, reported and did with time, made
/// by [`Pair::record`](super::Pair::record) or a [`Recorder`](super::Recorder),
/// saved with [`to_string`](ToString::to_string) and loaded with
/// [`Transcript::parse`]. [`Transcript::replay`] feeds one side's recorded
/// inputs to a fresh machine and checks that it writes the same bytes and
/// reports the same events.
///
/// # Text format
///
/// The first line is `# sansproto transcript v1`. Every other line is one
/// [`Entry`]: the virtual time since the clock started, as `+` seconds `.`
/// fraction (up to nine digits, nanoseconds), a space, then one of:
///
/// | line | meaning |
/// |---|---|
/// | `tick a` | `a.handle_timeout(now)` was called |
/// | `a>b N HEX` | `a.poll_transmit` wrote these `N` bytes (on their way to `b`) |
/// | `b<a N HEX` | `b.receive` took these `N` bytes (which came from `a`) |
/// | `b<a eof` | `b.receive_eof()` was called |
/// | `b event TEXT` | `b.poll_event()` returned the event whose `Debug` form is `TEXT` |
/// | `b error TEXT` | `b.receive` or `b.receive_eof` returned the error whose `Display` form is `TEXT` |
/// | `a call LABEL` | the test ran a command on `a` (a send, say), named `LABEL` |
///
/// `HEX` is lowercase or uppercase hexadecimal, two digits a byte. In
/// `TEXT` and `LABEL`, a backslash is written `\\`, a newline `\n` and a
/// carriage return `\r`. Blank lines and further lines starting with `#`
/// are ignored.
///
/// ```text
/// # sansproto transcript v1
/// +0.000000000 tick a
/// +0.000000000 tick b
/// +0.000000000 a call send hello
/// +0.000000000 a>b 5 68656c6c6f
/// +0.000000000 b<a 3 68656c
/// +0.000000000 b<a 2 6c6f
/// +0.000000000 b event Frame(b"hello")
/// +1.500000000 tick a
/// +1.500000000 b<a eof
/// ```
///
/// ```
/// use sansproto::testkit::{Action, Side, Transcript};
///
/// let text = "# sansproto transcript v1\n+0.5 b<a 2 6869\n";
/// let transcript = Transcript::parse(text).unwrap();
/// let entry = &transcript.entries()[0];
/// assert_eq!(entry.side, Side::B);
/// assert_eq!(entry.action, Action::Read(b"hi".to_vec()));
/// assert_eq!(transcript.received(Side::B), b"hi");
/// assert_eq!(
///     transcript.to_string(),
///     "# sansproto transcript v1\n+0.500000000 b<a 2 6869\n"
/// );
/// ```
///
/// Two transcripts are equal when their entries are, wherever their lines
/// were.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    entries: Vec<Entry>,
    /// The line of each entry in the text it was parsed from (or would be
    /// written to).
    lines: Vec<usize>,
}

/// One step of a [`Transcript`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Virtual time since the clock started.
    pub at: Duration,
    /// The machine that acted.
    pub side: Side,
    /// What it did.
    pub action: Action,
}

/// What a machine did, in a transcript [`Entry`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// `handle_timeout(now)` was called.
    Tick,
    /// `poll_transmit` wrote these bytes.
    Wrote(Vec<u8>),
    /// `receive` took these bytes.
    Read(Vec<u8>),
    /// `receive_eof` was called.
    Eof,
    /// `poll_event` returned the event of this `Debug` form.
    Event(String),
    /// `receive` or `receive_eof` returned the error of this `Display` form.
    Error(String),
    /// The test ran a command on the machine, under this label.
    Call(String),
}

/// Why [`Transcript::parse`] refused a text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transcript line {line}: {kind}")]
pub struct TranscriptError {
    /// The line (from 1) at fault.
    pub line: usize,
    /// What is wrong with it.
    pub kind: TranscriptErrorKind,
}

/// What is wrong with a transcript line, in a [`TranscriptError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TranscriptErrorKind {
    /// The first line is not `# sansproto transcript v1`.
    #[error("not a sansproto transcript v1 header")]
    Header,
    /// The time is not `+SECONDS.FRACTION`.
    #[error("bad time {0:?}")]
    Time(String),
    /// No known action follows the time.
    #[error("unknown action {0:?}")]
    Action(String),
    /// A byte count is missing or is not a number.
    #[error("bad byte count {0:?}")]
    Count(String),
    /// The bytes are not hexadecimal.
    #[error("bad hexadecimal")]
    Hex,
    /// The byte count and the bytes disagree.
    #[error("{declared} bytes declared, {found} given")]
    Length {
        /// The count on the line.
        declared: usize,
        /// The bytes the hexadecimal holds.
        found: usize,
    },
}

impl Transcript {
    /// An empty transcript.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry.
    pub fn push(&mut self, at: Duration, side: Side, action: Action) {
        let line = self.lines.last().map_or(2, |l| l + 1);
        self.entries.push(Entry { at, side, action });
        self.lines.push(line);
    }

    /// Every entry, in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The line of entry `index` in the text it came from: the parsed line,
    /// or the line [`to_string`](ToString::to_string) writes it on.
    pub fn line_of(&self, index: usize) -> usize {
        self.lines.get(index).copied().unwrap_or(index + 2)
    }

    /// Every byte `side` wrote, joined.
    pub fn written(&self, side: Side) -> Vec<u8> {
        self.join(side, |a| match a {
            Action::Wrote(b) => Some(b),
            _ => None,
        })
    }

    /// Every byte `side` read, joined.
    pub fn received(&self, side: Side) -> Vec<u8> {
        self.join(side, |a| match a {
            Action::Read(b) => Some(b),
            _ => None,
        })
    }

    /// The events `side` reported, as their `Debug` forms.
    pub fn events(&self, side: Side) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.side == side)
            .filter_map(|e| match &e.action {
                Action::Event(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    fn join(&self, side: Side, pick: impl Fn(&Action) -> Option<&Vec<u8>>) -> Vec<u8> {
        self.entries
            .iter()
            .filter(|e| e.side == side)
            .filter_map(|e| pick(&e.action))
            .flatten()
            .copied()
            .collect()
    }

    /// Reads a transcript written in the [text format](Transcript#text-format).
    pub fn parse(text: &str) -> Result<Transcript, TranscriptError> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        match lines.next() {
            Some((_, first)) if first.trim_end() == HEADER => {}
            _ => {
                return Err(TranscriptError {
                    line: 1,
                    kind: TranscriptErrorKind::Header,
                })
            }
        }
        let mut transcript = Transcript::new();
        for (line, text) in lines {
            let text = text.trim_end_matches('\r');
            if text.trim().is_empty() || text.starts_with('#') {
                continue;
            }
            let entry = parse_entry(text).map_err(|kind| TranscriptError { line, kind })?;
            transcript.entries.push(entry);
            transcript.lines.push(line);
        }
        Ok(transcript)
    }
}

impl PartialEq for Transcript {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Eq for Transcript {}

impl FromStr for Transcript {
    type Err = TranscriptError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Transcript::parse(s)
    }
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{HEADER}")?;
        for entry in &self.entries {
            writeln!(f, "{entry}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (me, peer) = (self.side.letter(), self.side.other().letter());
        write!(f, "+{}.{:09} ", self.at.as_secs(), self.at.subsec_nanos())?;
        match &self.action {
            Action::Tick => write!(f, "tick {me}"),
            Action::Wrote(bytes) => write!(f, "{me}>{peer} {} {}", bytes.len(), Hex(bytes)),
            Action::Read(bytes) => write!(f, "{me}<{peer} {} {}", bytes.len(), Hex(bytes)),
            Action::Eof => write!(f, "{me}<{peer} eof"),
            Action::Event(text) => write!(f, "{me} event {}", escape(text)),
            Action::Error(text) => write!(f, "{me} error {}", escape(text)),
            Action::Call(label) => write!(f, "{me} call {}", escape(label)),
        }
    }
}

struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn parse_entry(line: &str) -> Result<Entry, TranscriptErrorKind> {
    let (time, rest) = line.split_once(' ').unwrap_or((line, ""));
    let at = parse_time(time).ok_or_else(|| TranscriptErrorKind::Time(time.to_owned()))?;
    let bad_action = || TranscriptErrorKind::Action(rest.to_owned());
    let (word, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if word == "tick" {
        let side = parse_side(rest).ok_or_else(bad_action)?;
        return Ok(Entry {
            at,
            side,
            action: Action::Tick,
        });
    }
    if let Some(side) = parse_side(word) {
        let (kind, text) = rest.split_once(' ').unwrap_or((rest, ""));
        let action = match kind {
            "event" => Action::Event(unescape(text)),
            "error" => Action::Error(unescape(text)),
            "call" => Action::Call(unescape(text)),
            _ => return Err(bad_action()),
        };
        return Ok(Entry { at, side, action });
    }
    // `a>b` (written) or `b<a` (read): the first letter is the side acting.
    let (me, dir, peer) = match word.as_bytes() {
        [me, dir @ (b'>' | b'<'), peer] => (
            parse_side(&char::from(*me).to_string()),
            *dir,
            parse_side(&char::from(*peer).to_string()),
        ),
        _ => return Err(bad_action()),
    };
    let (Some(me), Some(peer)) = (me, peer) else {
        return Err(bad_action());
    };
    if peer != me.other() {
        return Err(bad_action());
    }
    if dir == b'<' && rest == "eof" {
        return Ok(Entry {
            at,
            side: me,
            action: Action::Eof,
        });
    }
    let (count, hex) = rest.split_once(' ').unwrap_or((rest, ""));
    let declared: usize = count
        .parse()
        .map_err(|_| TranscriptErrorKind::Count(count.to_owned()))?;
    let bytes = parse_hex(hex.trim()).ok_or(TranscriptErrorKind::Hex)?;
    if bytes.len() != declared {
        return Err(TranscriptErrorKind::Length {
            declared,
            found: bytes.len(),
        });
    }
    let action = if dir == b'>' {
        Action::Wrote(bytes)
    } else {
        Action::Read(bytes)
    };
    Ok(Entry {
        at,
        side: me,
        action,
    })
}

fn parse_side(s: &str) -> Option<Side> {
    match s {
        "a" => Some(Side::A),
        "b" => Some(Side::B),
        _ => None,
    }
}

/// `+SECONDS` or `+SECONDS.FRACTION`, the fraction up to nine digits.
fn parse_time(s: &str) -> Option<Duration> {
    let s = s.strip_prefix('+')?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let nanos: u32 = format!("{frac:0<9}").parse().ok()?;
    Some(Duration::new(secs, nanos))
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digits = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(digits, 16).ok()
        })
        .collect()
}
