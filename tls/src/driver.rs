//! TLS (rustls) between a transport and any `sansproto::Driver`, as one
//! `Driver`: rustls is sans-IO too, so TLS records go in through
//! `read_tls`/`process_new_packets`, the plaintext it yields goes to the
//! inner machine, and what the inner machine sends goes through rustls's
//! `writer()` and out again with `write_tls`. [`sansproto::blocking::drive`] runs it
//! unchanged.

use sansproto::Driver;
use std::io::{BufRead, ErrorKind, Write};
use std::time::Instant;

/// Why a [`Tls`] driver failed: TLS itself, or the machine inside it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError<E: std::error::Error + 'static> {
    /// The TLS session failed (an alert is queued for the peer).
    #[error("TLS: {0}")]
    Tls(rustls::Error),
    /// The machine inside TLS failed.
    #[error(transparent)]
    Inner(E),
}

/// A `Driver` wrapped in a rustls client or server session.
pub struct Tls<D> {
    tls: rustls::Connection,
    inner: D,
    /// Sticky TLS failure.
    error: Option<rustls::Error>,
    /// Plaintext taken from the inner machine, on its way into rustls.
    plain: Vec<u8>,
    /// The peer ended the TLS session (close_notify); its end of stream
    /// was passed on.
    peer_closed: bool,
    close_notify_sent: bool,
}

impl<D: Driver> Tls<D>
where
    D::Error: 'static,
{
    /// Runs `inner` inside `tls` (a `rustls::ClientConnection` or
    /// `ServerConnection`). rustls's own plaintext buffer limit is lifted:
    /// the inner machine already bounds what it queues.
    pub fn new(tls: impl Into<rustls::Connection>, inner: D) -> Self {
        let mut tls = tls.into();
        tls.set_buffer_limit(None);
        Self {
            tls,
            inner,
            error: None,
            plain: Vec::new(),
            peer_closed: false,
            close_notify_sent: false,
        }
    }

    /// The machine inside TLS.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The machine inside TLS, for commands.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// The TLS failure, once the session failed.
    pub fn error(&self) -> Option<&rustls::Error> {
        self.error.as_ref()
    }

    /// The TLS session (negotiated protocol version, ALPN, peer certificates).
    pub fn tls(&self) -> &rustls::Connection {
        &self.tls
    }

    fn fail(&mut self, e: rustls::Error) -> TlsError<D::Error> {
        self.error = Some(e.clone());
        TlsError::Tls(e)
    }

    /// Hands the plaintext rustls has decrypted to the inner machine, as
    /// far as it takes it. True when none is left waiting.
    fn read_plaintext(&mut self) -> Result<bool, TlsError<D::Error>> {
        loop {
            let mut reader = self.tls.reader();
            let result = match reader.fill_buf() {
                Ok([]) => {
                    if !self.peer_closed {
                        self.peer_closed = true;
                        self.inner.receive_eof().map_err(TlsError::Inner)?;
                    }
                    return Ok(true);
                }
                Ok(plain) => Ok(self.inner.receive(plain).map_err(TlsError::Inner)?),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
                Err(e) => Err(e),
            };
            match result {
                // The inner machine wants its events polled first.
                Ok(0) => return Ok(false),
                Ok(n) => self.tls.reader().consume(n),
                Err(e) => {
                    let e = rustls::Error::General(e.to_string());
                    return Err(self.fail(e));
                }
            }
        }
    }
}

impl<D: Driver> Driver for Tls<D>
where
    D::Error: 'static,
{
    type Event = D::Event;
    type Error = TlsError<D::Error>;

    fn receive(&mut self, mut data: &[u8]) -> Result<usize, Self::Error> {
        if let Some(e) = &self.error {
            return Err(TlsError::Tls(e.clone()));
        }
        let offered = data.len();
        // Plaintext the inner machine could not take yet goes first.
        if !self.read_plaintext()? {
            return Ok(0);
        }
        while !data.is_empty() {
            if let Err(e) = self.tls.read_tls(&mut data) {
                return Err(self.fail(rustls::Error::General(e.to_string())));
            }
            if let Err(e) = self.tls.process_new_packets() {
                return Err(self.fail(e));
            }
            if !self.read_plaintext()? {
                break;
            }
        }
        Ok(offered - data.len())
    }

    fn receive_eof(&mut self) -> Result<(), Self::Error> {
        if let Some(e) = &self.error {
            return Err(TlsError::Tls(e.clone()));
        }
        if self.peer_closed {
            return Ok(());
        }
        // The transport ended without close_notify: the inner machine sees
        // a plain end of stream and judges whether that was clean.
        self.peer_closed = true;
        self.inner.receive_eof().map_err(TlsError::Inner)
    }

    fn poll_event(&mut self) -> Option<Self::Event> {
        if let Some(event) = self.inner.poll_event() {
            return Some(event);
        }
        // Room again for plaintext that waited; a failure is kept and
        // returned by the next `receive`.
        if self.error.is_none() {
            let _ = self.read_plaintext();
        }
        self.inner.poll_event()
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let before = out.len();
        if self.error.is_none() {
            self.plain.clear();
            self.inner.poll_transmit(&mut self.plain);
            if !self.plain.is_empty() {
                // Buffered by rustls until the handshake completes; cannot
                // fall short with the buffer limit lifted.
                let _ = self.tls.writer().write_all(&self.plain);
            }
            if self.inner.is_finished() && !self.close_notify_sent {
                self.close_notify_sent = true;
                self.tls.send_close_notify();
            }
        }
        while self.tls.wants_write() {
            if self.tls.write_tls(out).is_err() {
                break;
            }
        }
        out.len() - before
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }

    fn is_finished(&self) -> bool {
        (self.error.is_some() || (self.inner.is_finished() && self.close_notify_sent))
            && !self.tls.wants_write()
    }
}
