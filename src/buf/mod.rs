//! Bounded buffers shared by the stream machines.
//!
//! [`RecvBuf`] holds received bytes that do not yet form a whole unit (frame,
//! handshake); payloads are split out of it as [`bytes::Bytes`] without a copy.
//! [`SendQueue`] (in `send.rs`) holds encoded bytes and shared payloads
//! until the caller takes them, and refuses to grow past its configured
//! limit.

mod flow;
mod send;

pub(crate) use flow::{check_marks, Flow};
pub use send::Output;
pub(crate) use send::{SendQueue, SHARE_MIN};

use bytes::{Bytes, BytesMut};

/// A socket read's worth: the most [`RecvBuf::room`] zeroes beyond what
/// was asked for, and the most data moved to the front of the buffer to
/// reuse its allocation (the start of the next unit).
const FEW: usize = 64 << 10;

/// Space zeroed and offered at once by [`RecvBuf::room`], at least.
const OFFER: usize = FEW;

/// Received units (messages, frames) larger than this are split off the
/// receive buffer in a batch of their own, and smaller ones together.
pub(crate) const ALONE_ABOVE: usize = 4 << 10;

/// How large the next unit of a batch may be after one of `len` bytes:
/// after a large unit none joins, after a small one only small ones do, so
/// that a small unit the application keeps never pins a large one (see
/// [`RecvBuf::split_to_keep`]).
#[inline]
pub(crate) fn joins_after(len: usize) -> usize {
    if len > ALONE_ABOVE {
        0
    } else {
        ALONE_ABOVE
    }
}

/// Whether input a machine has taken is being parsed, or waits for the
/// application to poll the events already queued (their bound reached).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Intake {
    /// Input is parsed as it is taken.
    #[default]
    Flowing,
    /// Parsing stopped at the event bound; it resumes when `poll_event`
    /// has emptied the queue.
    Paused,
    /// Paused, and the transport ended meanwhile: the end is taken once
    /// the input before it has been.
    PausedThenEof,
    /// Parsing stopped early, by choice rather than at the bound (a
    /// WebSocket session after an inflated message): it resumes when
    /// `poll_event` has emptied the queue, or before more input is taken.
    /// Input is still taken meanwhile.
    Deferred,
}

impl Intake {
    /// Parsing stops at the event bound.
    pub(crate) fn pause(&mut self) {
        if matches!(self, Self::Flowing | Self::Deferred) {
            *self = Self::Paused;
        }
    }

    /// Parsing stops early by choice (see [`Intake::Deferred`]).
    pub(crate) fn defer(&mut self) {
        if *self == Self::Flowing {
            *self = Self::Deferred;
        }
    }

    /// True while no input is taken until events are polled.
    pub(crate) fn refuses_input(self) -> bool {
        matches!(self, Self::Paused | Self::PausedThenEof)
    }

    /// Parsing resumes; returns whether the transport's end waits behind it.
    pub(crate) fn resume(&mut self) -> bool {
        std::mem::take(self) == Self::PausedThenEof
    }

    /// The transport ended: true when that must wait behind paused input
    /// (and now does).
    pub(crate) fn defer_eof(&mut self) -> bool {
        if *self == Self::Flowing {
            return false;
        }
        *self = Self::PausedThenEof;
        true
    }
}

/// Receive buffer: bytes are appended at the back and consumed from the front.
///
/// It can also be read into directly: [`RecvBuf::room`] offers zeroed space
/// behind the data, kept between reads so it is zeroed once per allocation,
/// and [`RecvBuf::commit`] turns what was written there into data. Its
/// `Debug` shows sizes, never the bytes (a request read there may carry
/// credentials).
#[derive(Default)]
pub(crate) struct RecvBuf {
    /// The data, then `room` bytes of space offered to read into.
    buf: BytesMut,
    room: usize,
    /// The data's length when the buffer itself was lent for a read.
    lent: Option<usize>,
    /// Bytes consumed from the front of the current allocation (the
    /// allocation is `front` plus the capacity): kept only to report what
    /// the buffer holds.
    front: usize,
    /// Where the data started when the buffer was lent.
    lent_at: usize,
}

impl std::fmt::Debug for RecvBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBuf")
            .field("buffered", &self.len())
            .field("room", &self.room)
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl RecvBuf {
    /// An empty buffer.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Runs `grow` on the buffer, which may move the data to the front of
    /// its allocation (or, with nothing consumed before it, into a new
    /// one), either way leaving nothing consumed before it.
    #[inline]
    fn growing<T>(&mut self, grow: impl FnOnce(&mut BytesMut) -> T) -> T {
        let at = self.buf.as_ptr();
        let out = grow(&mut self.buf);
        if self.buf.as_ptr() != at {
            self.front = 0;
        }
        out
    }

    /// Room for `additional` more bytes behind the data. `BytesMut` keeps
    /// the consumed front when it reallocates, which this buffer could not
    /// see; so once bytes were consumed, a buffer that cannot take the
    /// bytes in place (or by moving its data to the front) is copied into
    /// a new allocation of the data alone, twice the buffer's capacity (or
    /// what the data needs), so growth stays amortised as a reallocation's
    /// would.
    #[inline]
    fn reserve(&mut self, additional: usize) {
        if self.buf.capacity() - self.buf.len() >= additional {
            return;
        }
        if self.front == 0 || self.growing(|buf| buf.try_reclaim(additional)) {
            self.growing(|buf| buf.reserve(additional));
            return;
        }
        let want = self.buf.len().saturating_add(additional);
        let mut fresh = BytesMut::with_capacity(want.max(self.buf.capacity().saturating_mul(2)));
        fresh.extend_from_slice(&self.buf);
        self.buf = fresh;
        self.front = 0;
    }

    /// Forgets the space offered to read into (it stays allocated).
    #[inline]
    fn drop_room(&mut self) {
        if self.room > 0 {
            let len = self.len();
            self.buf.truncate(len);
            self.room = 0;
        }
    }

    /// Space of at least `min` bytes behind the data to read into; what is
    /// read there becomes data with [`commit`](Self::commit). Space is
    /// zeroed as it is first offered, a large read's worth (or `min`) at a
    /// time, and stays offered until bytes are appended another way: so the
    /// bytes a read is about to overwrite are zeroed while they are in
    /// cache, and once per allocation.
    pub(crate) fn room(&mut self, min: usize) -> &mut [u8] {
        self.lent = None;
        let min = min.max(1);
        if self.room < min {
            if self.buf.capacity() - self.buf.len() < min - self.room {
                self.compact();
                self.reserve(min);
            }
            let len = self.buf.len();
            let extra = (min - self.room).max(OFFER).min(self.buf.capacity() - len);
            self.buf.resize(len + extra, 0);
            self.room += extra;
        }
        let start = self.len();
        self.buf.split_at_mut(start).1
    }

    /// Space to read into, as [`room`](Self::room) gives, for a unit (a
    /// frame) of which `missing` bytes are still to come: laid out first
    /// by [`fit`](Self::fit), and at least a large read's worth of the unit
    /// (or `min`, when more).
    pub(crate) fn room_for(&mut self, min: usize, missing: usize) -> &mut [u8] {
        self.fit(missing);
        self.room(min.max(missing.min(FEW)))
    }

    /// Before a read into [`room`](Self::room) for a unit (a frame) of
    /// which `missing` bytes are still to come: when the start of it that
    /// is here is short (a socket read's worth) and the allocation has
    /// room for the rest only in front of it, moves it to the front now,
    /// so that the whole unit is read in place rather than moved once it
    /// is mostly here. Nothing is allocated.
    pub(crate) fn fit(&mut self, missing: usize) {
        if self.buf.capacity() - self.len() >= missing || self.len() > FEW {
            return;
        }
        // Only into the consumed front, where the move is cheap, and only
        // when the whole allocation then holds the rest. The room offered
        // behind the data (zeroed already) moves with it, so nothing is
        // zeroed again, and nothing is lost when the move cannot be made.
        if self.front < self.buf.len() || self.capacity() < self.len().saturating_add(missing) {
            return;
        }
        let more = missing.saturating_sub(self.room);
        let _ = self.growing(|buf| buf.try_reclaim(more));
    }

    /// Takes the first `n` bytes of the space [`room`](Self::room) offered
    /// as data; returns how many were taken (at most what was offered) and
    /// whether that filled less than the whole space (a short read).
    pub(crate) fn commit(&mut self, n: usize) -> (usize, bool) {
        let n = n.min(self.room);
        let short = n < self.room;
        self.room -= n;
        (n, short)
    }

    /// The buffer itself, with room for at least `min` more bytes, for a
    /// read that appends to it without zeroing (tokio's `read_buf`); the
    /// bytes appended are taken with [`take_appended`](Self::take_appended).
    pub(crate) fn lend(&mut self, min: usize) -> &mut BytesMut {
        self.compact();
        self.reserve(min.max(1));
        self.lent = Some(self.buf.len());
        self.lent_at = self.buf.as_ptr() as usize;
        &mut self.buf
    }

    /// How many bytes were appended since [`lend`](Self::lend), and whether
    /// the read left room unfilled (a short read). Bytes removed from what
    /// was there before count as none appended.
    pub(crate) fn take_appended(&mut self) -> (usize, bool) {
        let Some(before) = self.lent.take() else {
            return (0, true);
        };
        if self.buf.as_ptr() as usize != self.lent_at {
            // The reader grew the buffer: the data moved.
            self.front = 0;
        }
        // Space offered by `room` since is not data (and not lent).
        let after = self.len();
        if after < before {
            return (0, true);
        }
        (after - before, after < self.buf.capacity())
    }

    /// The bytes the buffer holds allocated: its data and the space
    /// behind it.
    pub(crate) fn capacity(&self) -> usize {
        self.front.saturating_add(self.buf.capacity())
    }

    /// Whether `bytes` lies in the buffer's current allocation (split out
    /// of it, so already counted by [`capacity`](Self::capacity)).
    pub(crate) fn shares(&self, bytes: &[u8]) -> bool {
        let start = (self.buf.as_ptr() as usize).wrapping_sub(self.front);
        let at = bytes.as_ptr() as usize;
        !bytes.is_empty() && at >= start && at < start.saturating_add(self.capacity())
    }

    /// Frees the allocation when nothing is buffered (an idle connection
    /// then holds no receive buffer).
    pub(crate) fn release_if_empty(&mut self) {
        if self.is_empty() {
            *self = Self::default();
        }
    }

    /// Appends received bytes.
    #[inline]
    pub(crate) fn extend(&mut self, data: &[u8]) {
        // Input taken another way ends a lend: a commit after it must not
        // count these bytes as the read's.
        self.lent = None;
        self.drop_room();
        self.reserve(data.len());
        self.buf.extend_from_slice(data);
    }

    /// Appends received bytes through `write`, after reserving room for
    /// `len` of them (for transforming them on the way in).
    #[inline]
    pub(crate) fn extend_with(&mut self, len: usize, write: impl FnOnce(&mut BytesMut)) {
        self.lent = None;
        self.drop_room();
        self.reserve(len);
        write(&mut self.buf);
    }

    /// When only a few bytes are left and nothing else shares the
    /// allocation, moves them to its front, so that what arrives next
    /// reuses the space already allocated: the buffer neither grows nor,
    /// later, has to move a large partial frame to make room.
    #[inline]
    pub(crate) fn compact(&mut self) {
        self.drop_room();
        if self.buf.len() <= FEW {
            let room = self.buf.capacity() - self.buf.len();
            // Asks for one byte more than fits behind the data: possible
            // only by moving the data to the front, which happens when that
            // is cheap (the data is shorter than the space before it).
            let _ = self.growing(|buf| buf.try_reclaim(room + 1));
        }
    }

    /// Bytes buffered and not yet consumed. `room` never exceeds the
    /// buffer's length; subtracting it saturating shows the compiler that
    /// the result does not either, so splits at `len` carry no failing
    /// bounds check.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        debug_assert!(self.room <= self.buf.len());
        self.buf.len().saturating_sub(self.room)
    }

    /// The first `end` buffered bytes (all of them, for an `end` past
    /// them): an HTTP head found at the front.
    #[inline]
    pub(crate) fn head(&self, end: usize) -> &[u8] {
        let data = self.as_slice();
        data.split_at(end.min(data.len())).0
    }

    /// The buffered bytes from `start` on (none from a `start` past them).
    #[inline]
    pub(crate) fn bytes_from(&self, start: usize) -> &[u8] {
        let data = self.as_slice();
        data.split_at(start.min(data.len())).1
    }

    /// True when nothing is buffered.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffered bytes.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        self.buf.split_at(self.len()).0
    }

    /// The buffered bytes, mutable (for in-place unmasking).
    #[inline]
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.len();
        self.buf.split_at_mut(len).0
    }

    /// Drops `n` bytes from the front.
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        let n = n.min(self.len());
        // Moves the start only: no handle to the shared buffer is made and
        // dropped, as splitting would.
        bytes::Buf::advance(&mut self.buf, n);
        self.front += n;
    }

    /// Splits `n` bytes off the front as a shared, zero-copy `Bytes`.
    #[inline]
    pub(crate) fn split_to(&mut self, n: usize) -> Bytes {
        let n = n.min(self.len());
        self.front += n;
        self.buf.split_to(n).freeze()
    }

    /// Keeps the first `n` bytes, dropping the rest.
    pub(crate) fn truncate(&mut self, n: usize) {
        self.drop_room();
        self.buf.truncate(n);
    }

    /// Splits `n` bytes off the front for the application to keep (a
    /// message, a batch of messages). A small split that would pin an
    /// allocation many times its size (a few bytes of a 64 KiB read
    /// buffer) is copied out instead, so what the application keeps holds
    /// about what it weighs, and the buffer's allocation stays unshared,
    /// ready for the next read. Larger splits stay zero-copy.
    #[inline]
    pub(crate) fn split_to_keep(&mut self, n: usize) -> Bytes {
        /// Splits up to this size may be copied (a socket read's worth).
        const COPY_UNDER: usize = 64 << 10;
        /// ...when the rest of the allocation they would pin (from the
        /// split on) is this many times larger than they are.
        const PIN_RATIO: usize = 8;
        let n = n.min(self.len());
        if n <= COPY_UNDER && n.saturating_mul(PIN_RATIO) <= self.buf.capacity() {
            let kept = Bytes::copy_from_slice(self.as_slice().split_at(n).0);
            self.advance(n);
            return kept;
        }
        self.front += n;
        self.buf.split_to(n).freeze()
    }

    /// Removes and returns everything buffered.
    pub(crate) fn take_all(&mut self) -> Bytes {
        let len = self.len();
        self.front += len;
        self.buf.split_to(len).freeze()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn growth_after_consuming_stays_amortised() {
        // A byte taken off the front before every append: each growth
        // finds bytes consumed, and still the buffer doubles.
        let mut b = RecvBuf::new();
        let (mut grew, mut capacity) = (0, 0);
        for _ in 0..4000 {
            b.extend(&[7u8; 1000]);
            b.advance(1);
            if b.capacity() != capacity {
                grew += 1;
                capacity = b.capacity();
            }
        }
        assert_eq!(b.len(), 4000 * 999);
        assert!(grew < 30, "{grew} growths");
        assert!(b.as_slice().iter().all(|&x| x == 7));
    }

    use super::*;

    /// Reads of 1460 bytes into the room while the start of a 1 MiB unit
    /// arrives, laid out by `fit` or not: how many reads found their space
    /// zeroed again although it had been offered (and written) already.
    fn rezeroed(with_fit: bool) -> usize {
        const UNIT: usize = 1 << 20;
        const READ: usize = 1460;
        let mut b = RecvBuf::new();
        let (mut rezeroed, mut first) = (0, true);
        while b.len() + READ <= FEW {
            if with_fit {
                b.fit(UNIT - b.len());
            }
            let room = b.room(64 << 10);
            if !first && room[0] == 0 {
                rezeroed += 1;
            }
            first = false;
            room.fill(0xAA);
            b.commit(READ);
        }
        rezeroed
    }

    #[test]
    fn laying_out_a_unit_zeroes_no_room_again() {
        let (with, without) = (rezeroed(true), rezeroed(false));
        assert!(with <= without, "with fit {with}, without {without}");
    }

    #[test]
    fn large_units_read_into_the_room_are_moved_only_while_short() {
        // Units of 1 MiB and a little, read 64 KiB at a time into the
        // room, each split off (and dropped) once whole, as a session
        // reads large frames. Past the first units, which grow the
        // allocation, a unit's bytes never move once more than a read's
        // worth of it is here.
        const UNIT: usize = (1 << 20) + 10;
        let mut b = RecvBuf::new();
        let mut source = (0..12 * UNIT).map(|i| (i % 251) as u8);
        let (mut units, mut big_moves) = (0, 0);
        let mut last: Option<*const u8> = None;
        while units < 12 {
            b.fit(UNIT.saturating_sub(b.len()));
            let room = b.room(64 << 10);
            let n = room.len().min(64 << 10);
            for (slot, byte) in room.iter_mut().zip(&mut source).take(n) {
                *slot = byte;
            }
            b.commit(n);
            let start = b.as_slice().as_ptr();
            if units >= 3 && b.len() > FEW + n && last != Some(start) {
                big_moves += 1;
            }
            last = Some(start);
            if b.len() >= UNIT {
                let unit = b.split_to(UNIT);
                let at = units * UNIT;
                assert!(unit
                    .iter()
                    .enumerate()
                    .all(|(i, &x)| x == ((at + i) % 251) as u8));
                units += 1;
                last = None;
            }
        }
        assert_eq!(big_moves, 0);
        assert!(b.capacity() <= 4 * UNIT, "{}", b.capacity());
    }

    #[test]
    fn recv_buf_splits_without_losing_bytes() {
        let mut b = RecvBuf::new();
        b.extend(b"hello ");
        b.extend(b"world");
        assert_eq!(b.len(), 11);
        assert_eq!(&b.split_to(5)[..], b"hello");
        b.advance(1);
        assert_eq!(b.as_slice(), b"world");
        assert_eq!(&b.take_all()[..], b"world");
        assert_eq!(b.len(), 0);
        // Over-long requests are clamped, never panic.
        b.extend(b"ab");
        assert_eq!(&b.split_to(10)[..], b"ab");
        b.advance(3);
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn small_splits_are_copied_out_of_a_large_buffer() {
        // A large buffer from earlier reads, now holding one small read.
        let mut b = RecvBuf::new();
        b.extend(&[0u8; 64 << 10]);
        b.advance(64 << 10);
        b.compact();
        b.extend(&[1u8; 7]);
        b.advance(2);
        let kept = b.split_to_keep(5);
        assert_eq!(&kept[..], &[1u8; 5]);
        // The buffer is not shared with `kept`: it can take its space back.
        let cap = b.buf.capacity();
        b.compact();
        assert!(b.buf.capacity() > cap);
        // A large split stays a slice of the buffer.
        b.extend(&[2u8; 32 << 10]);
        let big = b.split_to_keep(32 << 10);
        assert_eq!(big.len(), 32 << 10);
        assert!(b.is_empty());
    }

    #[test]
    fn compacting_reuses_the_allocation() {
        let mut b = RecvBuf::new();
        b.extend(&[7u8; 1000]);
        let head = b.split_to(990);
        // Shared with `head`: nothing moves.
        b.compact();
        assert_eq!(b.as_slice(), &[7u8; 10]);
        drop(head);
        let cap = b.buf.capacity();
        b.compact();
        assert_eq!(b.as_slice(), &[7u8; 10]);
        assert!(b.buf.capacity() > cap, "the space before the data is back");
        b.extend_with(3, |buf| buf.extend_from_slice(b"abc"));
        assert_eq!(&b.as_slice()[10..], b"abc");
    }
}
