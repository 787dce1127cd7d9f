//! The send queue: encoded bytes (headers, small payloads) and shared
//! payloads, in order, under a byte limit, taken either copied into one
//! `Vec` (`poll_transmit`) or as chunks for a vectored write ([`Output`]).

use super::flow::Flow;
use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::io::IoSlice;

/// Payloads at least this long are queued as shared chunks rather than
/// copied: below it the copy costs less than a chunk of its own.
pub(crate) const SHARE_MIN: usize = 4 << 10;

/// Outgoing bytes with a byte limit: earlier runs and shared payloads in
/// `chunks`, then the run being encoded into, `buf`. Its `Debug` shows
/// sizes, never the bytes (a request queued there may carry credentials).
pub(crate) struct SendQueue {
    chunks: VecDeque<Bytes>,
    /// Bytes in `chunks`.
    chunked: usize,
    buf: Vec<u8>,
    limit: usize,
    /// `limit` less `chunked`: what `buf` may hold (kept so that the
    /// per-send check is one comparison).
    buf_limit: usize,
    /// Bytes taken out, and the backpressure marks.
    flow: Flow,
}

impl std::fmt::Debug for SendQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendQueue")
            .field("queued", &self.len())
            .field("chunks", &self.chunks.len())
            .field("limit", &self.limit)
            .field("flow", &self.flow)
            .finish()
    }
}

impl SendQueue {
    /// An empty queue that refuses to hold more than `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            chunks: VecDeque::new(),
            chunked: 0,
            buf: Vec::new(),
            limit,
            buf_limit: limit,
            flow: Flow::new(),
        }
    }

    /// Bytes taken out and the backpressure marks, to read.
    #[inline]
    pub(crate) fn flow(&self) -> &Flow {
        &self.flow
    }

    /// Bytes taken out and the backpressure marks, to set or report.
    #[inline]
    pub(crate) fn flow_mut(&mut self) -> &mut Flow {
        &mut self.flow
    }

    /// Bytes queued.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.chunked + self.buf.len()
    }

    /// The bytes the queue holds: its shared chunks at their length, the
    /// run being encoded at its capacity, and the chunk list.
    pub(crate) fn memory(&self) -> usize {
        self.chunked
            .saturating_add(self.buf.capacity())
            .saturating_add(crate::memory::slots::<Bytes>(self.chunks.capacity()))
    }

    /// True when nothing is queued.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configured limit.
    #[inline]
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// True when `additional` more bytes fit under the limit.
    #[inline]
    pub(crate) fn has_room(&self, additional: usize) -> bool {
        self.buf.len().saturating_add(additional) <= self.buf_limit
    }

    /// Sets `chunked`, and what that leaves `buf`: the limit less the
    /// chunks' bytes and their slots, so that many tiny shared chunks are
    /// bounded by what they hold, not only by their bytes.
    #[inline]
    fn set_chunked(&mut self, chunked: usize) {
        self.chunked = chunked;
        let slots = self
            .chunks
            .len()
            .saturating_mul(std::mem::size_of::<Bytes>());
        self.buf_limit = self.limit.saturating_sub(chunked).saturating_sub(slots);
    }

    /// The run being encoded into, to append to directly. Callers check
    /// [`SendQueue::has_room`] first; protocol-mandated replies (close,
    /// pong, error responses) may bypass the limit since they are bounded.
    #[inline]
    pub(crate) fn buf_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Queues `payload` after everything encoded so far, as it is: shared,
    /// not copied.
    pub(crate) fn push_shared(&mut self, payload: Bytes) {
        self.seal();
        let chunked = self.chunked + payload.len();
        self.chunks.push_back(payload);
        self.set_chunked(chunked);
    }

    /// Moves the run being encoded into `chunks` (no copy is made).
    fn seal(&mut self) {
        if !self.buf.is_empty() {
            let run = Bytes::from(std::mem::take(&mut self.buf));
            let chunked = self.chunked + run.len();
            self.chunks.push_back(run);
            self.set_chunked(chunked);
        }
    }

    /// Moves everything queued to the end of `out`; returns the byte count.
    /// When `out` is empty and nothing is shared, the buffers are swapped
    /// instead of copied.
    pub(crate) fn drain_into(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.len();
        if n == 0 {
            return 0;
        }
        self.flow.took(n, 0);
        if self.chunks.is_empty() && out.is_empty() {
            std::mem::swap(out, &mut self.buf);
            return n;
        }
        out.reserve(n);
        for chunk in self.chunks.drain(..) {
            out.extend_from_slice(&chunk);
        }
        self.set_chunked(0);
        out.extend_from_slice(&self.buf);
        self.buf.clear();
        n
    }

    /// The queue as a [`Buf`] of its chunks, for a vectored write.
    pub(crate) fn output(&mut self) -> Output<'_> {
        Output { queue: self }
    }
}

/// The bytes a machine has queued to send, as a [`bytes::Buf`]: write its
/// chunks out (all at once with [`Buf::chunks_vectored`] and `writev`, or
/// with tokio's `write_buf`) and [`advance`](Buf::advance) past what was
/// written. Large payloads are chunks of their own, shared with the
/// message they came from rather than copied (a received message echoed
/// back is written from where it was read); headers and small payloads are
/// encoded into owned runs between them. `advance` after a partial write
/// copies nothing.
///
/// ```
/// use bytes::Buf;
/// use sansproto::ws::{Config, Message, Role, Session};
///
/// let mut session = Session::new(Role::Server, Config::default(), None, None, sansproto::default_random());
/// let payload = bytes::Bytes::from(vec![7u8; 1 << 20]);
/// session.send(Message::Binary(payload.clone())).unwrap();
/// let mut out = session.output();
/// let mut slices = [std::io::IoSlice::new(&[]); 4];
/// assert_eq!(out.chunks_vectored(&mut slices), 2); // the header, then the payload itself
/// assert_eq!(slices[1].as_ptr(), payload.as_ptr());
/// out.advance(out.remaining());
/// assert_eq!(session.buffered_amount(), 0);
/// ```
#[derive(Debug)]
pub struct Output<'a> {
    queue: &'a mut SendQueue,
}

impl Buf for Output<'_> {
    fn remaining(&self) -> usize {
        self.queue.len()
    }

    fn chunk(&self) -> &[u8] {
        match self.queue.chunks.front() {
            Some(chunk) => chunk,
            None => &self.queue.buf,
        }
    }

    fn chunks_vectored<'b>(&'b self, dst: &mut [IoSlice<'b>]) -> usize {
        let chunks = self.queue.chunks.iter().map(|c| &c[..]);
        let all = chunks.chain(Some(&self.queue.buf[..]).filter(|b| !b.is_empty()));
        let mut n = 0;
        for (slot, chunk) in dst.iter_mut().zip(all) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        n
    }

    fn advance(&mut self, mut cnt: usize) {
        let q = &mut *self.queue;
        let before = q.len();
        while cnt > 0 {
            let Some(front) = q.chunks.front_mut() else {
                if cnt >= q.buf.len() {
                    // All written: the run's allocation is kept for reuse.
                    q.buf.clear();
                    break;
                }
                // Part of the run: it becomes a chunk, so that following
                // the partial write copies nothing.
                q.seal();
                continue;
            };
            let n = cnt.min(front.len());
            front.advance(n);
            cnt -= n;
            if front.is_empty() {
                q.chunks.pop_front();
            }
            let chunked = q.chunked - n;
            q.set_chunked(chunked);
        }
        q.flow.took(before, q.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_queue_limit_and_drain() {
        let mut q = SendQueue::new(4);
        assert!(q.has_room(4));
        assert!(!q.has_room(5));
        q.buf_mut().extend_from_slice(b"abc");
        assert!(!q.has_room(2));
        let mut out = Vec::new();
        assert_eq!(q.drain_into(&mut out), 3);
        assert_eq!(out, b"abc");
        q.buf_mut().extend_from_slice(b"d");
        assert_eq!(q.drain_into(&mut out), 1);
        assert_eq!(out, b"abcd");
        assert_eq!(q.drain_into(&mut out), 0);
        assert_eq!(q.len(), 0);
    }

    /// A queue of runs and shared chunks: "ab", shared "CDEF", "gh".
    fn mixed() -> SendQueue {
        let mut q = SendQueue::new(usize::MAX);
        q.buf_mut().extend_from_slice(b"ab");
        q.push_shared(Bytes::from_static(b"CDEF"));
        q.buf_mut().extend_from_slice(b"gh");
        q
    }

    #[test]
    fn output_equals_drain_for_every_partial_write_split() {
        let all = b"abCDEFgh";
        let mut drained = Vec::new();
        assert_eq!(mixed().drain_into(&mut drained), 8);
        assert_eq!(drained, all);
        // Every sequence of two partial writes, then the rest.
        for first in 0..=all.len() {
            for second in 0..=all.len() - first {
                let mut q = mixed();
                let mut written = Vec::new();
                for cnt in [first, second, usize::MAX] {
                    let mut out = q.output();
                    let mut take = cnt.min(out.remaining());
                    while take > 0 {
                        let chunk = out.chunk();
                        let n = take.min(chunk.len());
                        written.extend_from_slice(&chunk[..n]);
                        out.advance(n);
                        take -= n;
                    }
                }
                assert_eq!(written, all, "{first} then {second}");
                assert!(q.is_empty());
            }
        }
    }

    #[test]
    fn vectored_chunks_share_the_payload() {
        let payload = Bytes::from(vec![9u8; 1 << 16]);
        let mut q = SendQueue::new(usize::MAX);
        q.buf_mut().extend_from_slice(b"hd");
        q.push_shared(payload.clone());
        q.buf_mut().extend_from_slice(b"tl");
        let out = q.output();
        let mut slices = [IoSlice::new(&[]); 8];
        assert_eq!(out.chunks_vectored(&mut slices), 3);
        assert_eq!(&*slices[0], b"hd");
        assert_eq!(slices[1].as_ptr(), payload.as_ptr(), "not copied");
        assert_eq!(&*slices[2], b"tl");
        // Too few slots: as many chunks as fit, in order.
        let mut one = [IoSlice::new(&[]); 1];
        assert_eq!(out.chunks_vectored(&mut one), 1);
        assert_eq!(&*one[0], b"hd");
    }
}
