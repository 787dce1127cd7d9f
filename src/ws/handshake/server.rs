//! The server's opening handshake as a machine: it reads the request,
//! lets the application decide (or accepts at once), and hands the result
//! to the open session.
//!
//! States and their transitions, all in this file:
//!
//! ```text
//! Head ──upgrade, auto──────────────────────────────▶ (handed over: 101 queued)
//!  │ └─upgrade, application decides─▶ Deciding ─accept▶ (handed over: 101 queued)
//!  │                                     └─reject──▶ Answered
//!  ├─plain HTTP request─▶ Http ─send_http_response─▶ Answered
//!  └─bad request, EOF, deadline──────────────────────▶ Failed
//! Deciding ─EOF, deadline, too many early bytes──────▶ Failed
//! Http ─EOF, deadline───────────────────────────────▶ Failed
//! ```
//!
//! A request reported and left unanswered ends as an undecided upgrade
//! does: the peer's end of the stream fails the handshake
//! ([`HandshakeError::Eof`]), and so does the handshake deadline
//! ([`TimeoutKind::Handshake`]), which runs from the first
//! `handle_timeout` call until the request is answered; nothing is sent.

use super::answer::{Accept, Reject};
use super::upgrade::{is_upgrade, UpgradeRequest};
use super::{HandshakeError, HandshakeTimer, Handshaken};
use crate::buf::{RecvBuf, SendQueue};
use crate::ws::error::{Error, SendErrorKind, TimeoutKind};
use crate::ws::http::head::{parse_request, HeadReader};
use crate::ws::http::{HttpRequest, MalformedHttp};
use crate::ws::message::{Event, Opened};
use crate::ws::Config;
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::Instant;

/// Who answers an upgrade request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The handshake accepts every valid request with the configured
    /// choices.
    Auto,
    /// The request is reported as [`Event::Upgrade`] and waits for
    /// `accept` or `reject`.
    Application,
}

#[derive(Debug)]
enum State {
    /// Reading the request head.
    Head,
    /// A valid upgrade request was reported; waiting for the answer.
    Deciding(Box<UpgradeRequest>),
    /// A plain HTTP request was reported; waiting for its response.
    Http,
    /// A refusal or an HTTP response is queued; the exchange is over.
    Answered,
    /// The handshake failed.
    Failed(Error),
}

/// The server side of the opening handshake.
#[derive(Debug)]
pub(crate) struct ServerHandshake {
    config: Config,
    decision: Decision,
    state: State,
    head: HeadReader,
    recv: RecvBuf,
    send: SendQueue,
    events: VecDeque<Event>,
    timer: HandshakeTimer,
}

impl ServerHandshake {
    pub(crate) fn new(config: Config, decision: Decision) -> Self {
        let send = SendQueue::new(config.max_send_queue);
        Self {
            config,
            decision,
            state: State::Head,
            head: HeadReader::default(),
            recv: RecvBuf::new(),
            send,
            events: VecDeque::new(),
            timer: HandshakeTimer::default(),
        }
    }

    /// Received bytes held: the head so far, and what followed it.
    pub(crate) fn buffered_input(&self) -> usize {
        self.recv.len()
    }

    /// What the handshake holds on the heap.
    pub(crate) fn memory_usage(&self) -> crate::MemoryUsage {
        let mut usage = super::memory_usage(&self.recv, &self.send, &self.events, &self.config);
        // The request waiting for the application's decision, as received
        // data.
        if let State::Deciding(upgrade) = &self.state {
            usage.receive += std::mem::size_of_val(&**upgrade) + upgrade.heap();
        }
        usage
    }

    pub(crate) fn error(&self) -> Option<&Error> {
        match &self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.state, State::Answered | State::Failed(_))
    }

    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub(crate) fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.send.drain_into(out)
    }

    /// Takes the bytes received after a plain HTTP request's head (its
    /// body, up to the handshake size limit).
    pub(crate) fn take_buffered(&mut self) -> Bytes {
        self.recv.take_all()
    }

    /// Feeds received bytes; returns the handover once the upgrade was
    /// accepted without asking the application.
    pub(crate) fn receive(&mut self, data: &[u8]) -> Result<Option<Handshaken>, Error> {
        let limit = self.config.max_handshake_size;
        match &self.state {
            State::Failed(e) => return Err(e.clone()),
            State::Answered => return Ok(None),
            State::Http => {
                // Keep what a caller might want (a request body), bounded.
                let room = limit.saturating_sub(self.recv.len());
                self.recv.extend(data.split_at(room.min(data.len())).0);
                return Ok(None);
            }
            State::Deciding(_) => {
                // Bytes behind the request wait for the answer, bounded.
                if self.recv.len().saturating_add(data.len()) > limit {
                    return Err(self.fail(HandshakeError::TooLarge(limit).into()));
                }
                self.recv.extend(data);
                return Ok(None);
            }
            State::Head => {}
        }
        let (now, later) = data.split_at(HeadReader::room(self.recv.len(), data, limit));
        self.recv.extend(now);
        let end = match self.head.find(self.recv.as_slice(), limit) {
            Ok(Some(end)) => end,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.fail(HandshakeError::from(e).into())),
        };
        let parsed = parse_request(self.recv.head(end), self.config.max_headers);
        self.recv.advance(end);
        self.recv.extend(later);
        let (request, minor_version) = match parsed {
            Ok(r) => r,
            Err(e) => return Err(self.fail(HandshakeError::from(e).into())),
        };
        if !is_upgrade(&request.headers) {
            // What follows the head is kept as it would be had it come later.
            self.recv.truncate(limit);
            self.state = State::Http;
            self.events.push_back(Event::HttpRequest(Box::new(request)));
            return Ok(None);
        }
        if minor_version < 1 {
            let e = HandshakeError::Malformed(MalformedHttp::UpgradeBeforeHttp11);
            return Err(self.fail(e.into()));
        }
        let upgrade = match UpgradeRequest::parse(request) {
            Ok(u) => u,
            Err(e) => return Err(self.fail(e.into())),
        };
        match self.decision {
            Decision::Auto => match self.hand_over(&upgrade, &Accept::new()) {
                Ok(done) => Ok(Some(done)),
                Err(kind) => Err(self.fail(match kind {
                    SendErrorKind::Field(f) => HandshakeError::Field(f).into(),
                    other => Error::Send(other),
                })),
            },
            Decision::Application => {
                // Bytes behind the request wait for the answer, bounded.
                if self.recv.len() > limit {
                    return Err(self.fail(HandshakeError::TooLarge(limit).into()));
                }
                self.events
                    .push_back(Event::Upgrade(Box::new(upgrade.clone())));
                self.state = State::Deciding(Box::new(upgrade));
                Ok(None)
            }
        }
    }

    /// The application accepts the reported upgrade request.
    pub(crate) fn accept(&mut self, answer: &Accept) -> Result<Handshaken, SendErrorKind> {
        let State::Deciding(upgrade) = &self.state else {
            return Err(SendErrorKind::WrongState);
        };
        let upgrade = upgrade.clone();
        self.hand_over(&upgrade, answer)
    }

    /// The application refuses the reported upgrade request.
    pub(crate) fn reject(&mut self, answer: &Reject) -> Result<(), SendErrorKind> {
        if !matches!(self.state, State::Deciding(_)) {
            return Err(SendErrorKind::WrongState);
        }
        self.answer(answer)
    }

    /// The application answers the reported plain HTTP request.
    pub(crate) fn send_http_response(&mut self, answer: &Reject) -> Result<(), SendErrorKind> {
        if !matches!(self.state, State::Http) {
            return Err(SendErrorKind::WrongState);
        }
        self.answer(answer)
    }

    fn answer(&mut self, answer: &Reject) -> Result<(), SendErrorKind> {
        let bytes = answer.response_bytes().map_err(SendErrorKind::Field)?;
        if !self.send.has_room(bytes.len()) {
            return Err(SendErrorKind::QueueFull);
        }
        self.send.buf_mut().extend_from_slice(&bytes);
        self.state = State::Answered;
        Ok(())
    }

    /// Builds the 101 and everything the session starts from. The
    /// machine is dropped after this.
    fn hand_over(
        &mut self,
        upgrade: &UpgradeRequest,
        answer: &Accept,
    ) -> Result<Handshaken, SendErrorKind> {
        let accepted = upgrade
            .accept(&self.config, answer)
            .map_err(SendErrorKind::Field)?;
        let mut preamble = Vec::new();
        self.send.drain_into(&mut preamble);
        preamble.extend_from_slice(&accepted.response_bytes().map_err(SendErrorKind::Field)?);
        let (offer, extension) = match accepted.extension {
            Some((offer, ext)) => (Some(offer.to_string()), Some(ext)),
            None => (None, None),
        };
        let request: HttpRequest = upgrade.request.clone();
        Ok(Handshaken {
            opened: Opened {
                protocol: accepted.protocol,
                extension: offer,
                request: Some(request),
                response: None,
            },
            extension,
            events: self.events.drain(..).collect(),
            preamble,
            now: self.timer.now(),
            rest: self.recv.take_all(),
        })
    }

    pub(crate) fn receive_eof(&mut self) -> Result<(), Error> {
        match &self.state {
            State::Failed(e) => Err(e.clone()),
            State::Head | State::Deciding(_) | State::Http => {
                Err(self.fail(HandshakeError::Eof.into()))
            }
            State::Answered => Ok(()),
        }
    }

    /// Whether the handshake deadline runs: until the request is answered
    /// (or the handshake failed).
    fn waiting(&self) -> bool {
        matches!(self.state, State::Head | State::Deciding(_) | State::Http)
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timer.deadline().filter(|_| self.waiting())
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let due = self.timer.tick(now, self.config.handshake_timeout);
        if due && self.waiting() {
            let _ = self.fail(Error::Timeout(TimeoutKind::Handshake));
        }
    }

    /// Fails the handshake, answering a bad request with its HTTP error.
    fn fail(&mut self, err: Error) -> Error {
        if let Error::Handshake(e) = &err {
            if *e != HandshakeError::Eof {
                // The refusal is built from this crate's own statuses and
                // fields; were one ever unwritable, the connection closes
                // without an HTTP answer rather than with a broken one.
                if let Ok(bytes) = Reject::for_error(e).response_bytes() {
                    self.send.buf_mut().extend_from_slice(&bytes);
                }
            }
        }
        self.state = State::Failed(err.clone());
        err
    }
}
