//! Request/response correlation, beside any framing: request ids, a
//! deadline per request, replies matched by id, timeouts reported.
//!
//! Protocols that multiplex requests over one stream carry an id in each
//! request and its reply: Tarantool's 32-bit request id (wrapping), Pomelo's
//! `reqId`, Sockhop's callback ids. A [`Correlator`] hands out the ids
//! (skipping those still in flight), keeps what the application gave with
//! each request (a token: a callback's key, a channel, the request itself),
//! and gives that token back exactly once: with the reply, or as timed out.
//! No callback is stored, and nothing is unbounded: over
//! [`Builder::max_in_flight`] a request is refused with its token handed back.
//!
//! ```
//! use sansproto::correlate::{Config, Correlator, Outcome};
//! use std::time::{Duration, Instant};
//!
//! let config = Config::builder().timeout(Duration::from_secs(5)).build()?;
//! let mut requests = Correlator::new(config);
//! let now = Instant::now();
//! let a = requests.start("ping", now)?;
//! let b = requests.start("select", now)?;
//! // Replies come back in any order; an unknown or repeated id is None.
//! assert_eq!(requests.reply(b), Some("select"));
//! assert_eq!(requests.reply(b), None);
//! // `a` never gets its reply.
//! requests.handle_timeout(now + Duration::from_secs(5));
//! assert_eq!(requests.poll_outcome(), Some(Outcome::TimedOut { id: a, token: "ping" }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::timer::deadline_after;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

/// Request ids, deadlines and bounds, validated once by [`Builder::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    first_id: u64,
    last_id: u64,
    start_id: u64,
    max_in_flight: usize,
    timeout: Duration,
}

impl Config {
    /// A builder, from the defaults: ids `1..=u32::MAX` (wrapping back to
    /// 1), 1024 requests in flight, 30 s to reply.
    pub fn builder() -> Builder {
        Builder::default()
    }
}

impl Default for Config {
    fn default() -> Self {
        Builder::default().assemble()
    }
}

/// Builds a [`Config`].
#[derive(Debug, Clone)]
pub struct Builder {
    ids: RangeInclusive<u64>,
    start_at: Option<u64>,
    max_in_flight: usize,
    timeout: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            ids: 1..=u64::from(u32::MAX),
            start_at: None,
            max_in_flight: 1024,
            timeout: Duration::from_secs(30),
        }
    }
}

impl Builder {
    /// The ids handed out, in order, wrapping from the last back to the
    /// first (default `1..=u32::MAX`: Tarantool's 32 bits, 0 left for
    /// messages that expect no reply, as Pomelo's notify).
    pub fn ids(mut self, ids: RangeInclusive<u64>) -> Self {
        self.ids = ids;
        self
    }

    /// The first id handed out, inside [`ids`](Self::ids) (default its
    /// start): a client that resumes a numbering, or a test that starts
    /// just below the wrap.
    ///
    /// ```
    /// use sansproto::correlate::{Config, Correlator};
    /// use std::time::Instant;
    ///
    /// let last = u64::from(u32::MAX);
    /// let config = Config::builder().ids(0..=last).start_at(last - 1).build().unwrap();
    /// let mut requests = Correlator::new(config);
    /// let now = Instant::now();
    /// let ids: Vec<u64> = (0..4).map(|i| requests.start(i, now).unwrap()).collect();
    /// assert_eq!(ids, [last - 1, last, 0, 1]);
    /// ```
    pub fn start_at(mut self, id: u64) -> Self {
        self.start_at = Some(id);
        self
    }

    /// The most requests waiting for a reply (default 1024). At most the
    /// number of ids.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max;
        self
    }

    /// How long a reply may take (default 30 s); a request can also be
    /// given its own with [`Correlator::start_with_timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the settings and builds the [`Config`].
    pub fn build(self) -> Result<Config, ConfigError> {
        if self.ids.is_empty() {
            return Err(ConfigError::NoIds);
        }
        if let Some(id) = self.start_at.filter(|id| !self.ids.contains(id)) {
            return Err(ConfigError::StartOutsideIds(id));
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::ZeroInFlight);
        }
        let ids = self.ids.end().abs_diff(*self.ids.start()).saturating_add(1);
        if self.max_in_flight as u64 > ids {
            return Err(ConfigError::MoreInFlightThanIds {
                max_in_flight: self.max_in_flight,
                ids,
            });
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        Ok(self.assemble())
    }

    fn assemble(self) -> Config {
        Config {
            first_id: *self.ids.start(),
            last_id: *self.ids.end(),
            start_id: self.start_at.unwrap_or(*self.ids.start()),
            max_in_flight: self.max_in_flight,
            timeout: self.timeout,
        }
    }
}

/// Why a [`Builder`] refused to build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The id range is empty.
    #[error("the id range is empty")]
    NoIds,
    /// [`Builder::start_at`] lies outside [`Builder::ids`].
    #[error("the first id {0} is outside the id range")]
    StartOutsideIds(u64),
    /// No request could ever be in flight.
    #[error("the in-flight bound must be at least one")]
    ZeroInFlight,
    /// More requests in flight than there are ids to tell them apart.
    #[error("{max_in_flight} requests in flight need more than {ids} ids")]
    MoreInFlightThanIds {
        /// The bound asked for.
        max_in_flight: usize,
        /// How many ids the range holds.
        ids: u64,
    },
    /// Every request would time out at once.
    #[error("the reply timeout must be longer than zero")]
    ZeroTimeout,
}

/// Why [`Correlator::start`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusedKind {
    /// [`Builder::max_in_flight`] requests are waiting for replies (timed
    /// out ones count until their outcome is polled).
    InFlightFull,
}

impl fmt::Display for RefusedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InFlightFull => f.write_str("too many requests in flight"),
        }
    }
}

/// A refused request, with its token handed back.
pub type Refused<T> = crate::SendError<T, RefusedKind>;

/// How a request ended, when not by [`Correlator::reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome<T> {
    /// No reply came before the deadline; a reply arriving later is unknown.
    TimedOut {
        /// The request's id.
        id: u64,
        /// What was given with it.
        token: T,
    },
}

/// One request waiting for its reply.
#[derive(Debug)]
struct Pending<T> {
    token: T,
    deadline: Instant,
}

/// Hands out request ids and matches replies to them. See the
/// [module documentation](self).
#[derive(Debug)]
pub struct Correlator<T> {
    config: Config,
    next_id: u64,
    pending: HashMap<u64, Pending<T>>,
    /// The deadlines of `pending`, earliest first.
    deadlines: BTreeSet<(Instant, u64)>,
    /// Requests that timed out, until polled.
    outcomes: VecDeque<Outcome<T>>,
    /// Their ids, not handed out again until polled (so the application
    /// never holds one id for two requests).
    unpolled: HashSet<u64>,
}

impl<T> Correlator<T> {
    /// A correlator with nothing in flight.
    pub fn new(config: Config) -> Self {
        Self {
            next_id: config.start_id,
            config,
            pending: HashMap::new(),
            deadlines: BTreeSet::new(),
            outcomes: VecDeque::new(),
            unpolled: HashSet::new(),
        }
    }

    /// Starts a request at `now` with the configured timeout: returns the
    /// id to send with it, or refuses it (token handed back) when
    /// [`Builder::max_in_flight`] requests are in flight.
    pub fn start(&mut self, token: T, now: Instant) -> Result<u64, Refused<T>> {
        self.start_with_timeout(token, now, self.config.timeout)
    }

    /// [`start`](Self::start) with a timeout of its own.
    pub fn start_with_timeout(
        &mut self,
        token: T,
        now: Instant,
        timeout: Duration,
    ) -> Result<u64, Refused<T>> {
        if self.in_flight() >= self.config.max_in_flight {
            return Err(Refused::new(RefusedKind::InFlightFull, token));
        }
        // Fewer ids are in flight (or timed out and unpolled) than exist,
        // so a free one is found within `in_flight + 1` steps.
        let mut id = self.next_id;
        while self.pending.contains_key(&id) || self.unpolled.contains(&id) {
            id = self.after(id);
        }
        self.next_id = self.after(id);
        let deadline = deadline_after(now, timeout);
        self.pending.insert(id, Pending { token, deadline });
        self.deadlines.insert((deadline, id));
        Ok(id)
    }

    /// The reply to `id` arrived: the token given with its request, or
    /// `None` when no request with that id is waiting (unknown, answered
    /// already, or timed out).
    pub fn reply(&mut self, id: u64) -> Option<T> {
        let pending = self.pending.remove(&id)?;
        self.deadlines.remove(&(pending.deadline, id));
        Some(pending.token)
    }

    /// The earliest deadline of a request in flight.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(at, _)| at)
    }

    /// Ends every request whose deadline is at or before `now`; each is
    /// then reported once by [`poll_outcome`](Self::poll_outcome), in
    /// deadline order.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(pending) = self.pending.remove(&id) {
                self.unpolled.insert(id);
                self.outcomes.push_back(Outcome::TimedOut {
                    id,
                    token: pending.token,
                });
            }
        }
    }

    /// The next request that ended without a reply.
    pub fn poll_outcome(&mut self) -> Option<Outcome<T>> {
        let outcome = self.outcomes.pop_front()?;
        let Outcome::TimedOut { id, .. } = &outcome;
        self.unpolled.remove(id);
        Some(outcome)
    }

    /// Requests not yet ended, and timed-out ones not yet polled.
    pub fn in_flight(&self) -> usize {
        self.pending.len() + self.outcomes.len()
    }

    /// The id after `id`, wrapping.
    fn after(&self, id: u64) -> u64 {
        if id >= self.config.last_id {
            self.config.first_id
        } else {
            id + 1
        }
    }
}
