//! An in-memory transport: a socket's read and write sides, each handing
//! over at most 64 KiB per call.

use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most a socket read returns, and the most a socket write takes.
pub const IO_CHUNK: usize = 64 << 10;

/// What a socket's send side does with written bytes: takes at most 64 KiB
/// per call and copies them out (into a buffer that stays hot, as the
/// kernel's would). Remembers the first bytes and the last write so the
/// output can be checked.
pub struct Sink {
    staging: Vec<u8>,
    staged: usize,
    pub head: Vec<u8>,
    pub total: usize,
}

impl Sink {
    pub fn new() -> Self {
        Self {
            staging: vec![0; IO_CHUNK],
            staged: 0,
            head: Vec::with_capacity(14),
            total: 0,
        }
    }

    /// One `write` call: returns how many bytes were taken.
    #[inline]
    fn write(&mut self, buf: &[u8]) -> usize {
        let n = buf.len().min(IO_CHUNK);
        if self.head.len() < 14 {
            let want = (14 - self.head.len()).min(n);
            self.head.extend_from_slice(&buf[..want]);
        }
        self.staging[..n].copy_from_slice(&buf[..n]);
        self.staged = n;
        self.total += n;
        n
    }

    pub fn write_all(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            let n = self.write(buf);
            buf = &buf[n..];
        }
    }

    pub fn last_write(&self) -> &[u8] {
        &self.staging[..self.staged]
    }
}

/// A connected socket in memory: reads hand out the input at most 64 KiB
/// at a time, writes go to a [`Sink`].
pub struct MemStream<'a> {
    input: &'a [u8],
    pub sink: Sink,
}

impl<'a> MemStream<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            sink: Sink::new(),
        }
    }

    #[inline]
    fn read_into(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(IO_CHUNK).min(self.input.len());
        let (now, rest) = self.input.split_at(n);
        buf[..n].copy_from_slice(now);
        self.input = rest;
        n
    }

    /// A read that appends to a `BytesMut` without zeroing it first (as
    /// tokio's `read_buf`): at most its spare capacity.
    #[inline]
    pub fn read_buf(&mut self, buf: &mut bytes::BytesMut) -> usize {
        let spare = buf.capacity() - buf.len();
        let n = spare.min(IO_CHUNK).min(self.input.len());
        let (now, rest) = self.input.split_at(n);
        buf.extend_from_slice(now);
        self.input = rest;
        n
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> usize {
        let mut n = 0;
        for b in bufs {
            if n == IO_CHUNK {
                break;
            }
            let take = b.len().min(IO_CHUNK - n);
            n += self.sink.write(&b[..take]);
        }
        n
    }
}

impl Read for MemStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.read_into(buf))
    }
}

impl Write for MemStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.sink.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Ok(MemStream::write_vectored(self, bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for MemStream<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = buf.remaining().min(IO_CHUNK).min(this.input.len());
        let (now, rest) = this.input.split_at(n);
        buf.put_slice(now);
        this.input = rest;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MemStream<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.get_mut().sink.write(buf)))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.get_mut().write_vectored(bufs)))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}

/// Bytes written, and the last write, for checking.
pub struct Written {
    pub total: usize,
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
}

impl From<Sink> for Written {
    fn from(s: Sink) -> Self {
        Self {
            total: s.total,
            tail: s.last_write().to_vec(),
            head: s.head,
        }
    }
}
