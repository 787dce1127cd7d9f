//! What a machine holds in memory, by part, and the budget it may be held
//! to.
//!
//! Every machine reports its [`MemoryUsage`]: the heap it owns through its
//! buffers and queues, plus its own size. A server with many connections
//! sums them to know where its memory goes, and can give each stream
//! connection a budget (`ws::Config::with_memory_budget`,
//! `prefix::Builder::memory_budget`): input that would take a machine over
//! it fails the connection, and a send that would is refused with its
//! payload handed back. A datagram endpoint is held to its segmentation and
//! send-queue limits instead.
//!
//! See [`MemoryUsage`] for what is counted and what a budget is charged.

/// The bytes a machine holds, by part.
///
/// The figures count capacities, not lengths: a buffer that grew for a
/// large frame and has not shrunk is counted at its size. A payload shared
/// with the application (a received message not yet dropped, a prepared
/// message sent to many connections) is counted by each holder at its full
/// length.
///
/// A memory budget is charged the same figures but for two parts: the
/// receive buffer and the send queue count the bytes they hold, not their
/// spare capacity, so that room offered to a read, or capacity a queue
/// keeps for reuse, fails nothing. The `held` of an over-budget error is
/// that charge.
///
/// ```
/// use sansproto::ws::{Config, Role, Session};
///
/// let mut session = Session::new(Role::Server, Config::default(), None, None, sansproto::default_random());
/// let idle = session.memory_usage();
/// assert_eq!(idle.send, 0);
/// session.send("hello").unwrap();
/// assert!(session.memory_usage().send >= 7);
/// assert!(session.memory_usage().total() > idle.total());
/// ```
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryUsage {
    /// The receive buffer: received bytes not yet parsed or split out (its
    /// whole allocation).
    pub receive: usize,
    /// Events not yet polled: what they carry beyond the receive buffer.
    pub events: usize,
    /// Messages being put back together from their fragments.
    pub reassembly: usize,
    /// Bytes queued to send.
    pub send: usize,
    /// Compression state (zlib's windows and tables), when negotiated.
    pub compression: usize,
    /// The machine itself: its fields, configuration and bookkeeping.
    pub state: usize,
}

impl MemoryUsage {
    /// The sum of the parts.
    pub fn total(&self) -> usize {
        self.receive
            .saturating_add(self.events)
            .saturating_add(self.reassembly)
            .saturating_add(self.send)
            .saturating_add(self.compression)
            .saturating_add(self.state)
    }

    /// Adds `other`'s parts to these (a connection and what it wraps, or
    /// the connections of a server).
    pub fn add(&mut self, other: &MemoryUsage) {
        self.receive = self.receive.saturating_add(other.receive);
        self.events = self.events.saturating_add(other.events);
        self.reassembly = self.reassembly.saturating_add(other.reassembly);
        self.send = self.send.saturating_add(other.send);
        self.compression = self.compression.saturating_add(other.compression);
        self.state = self.state.saturating_add(other.state);
    }
}

impl std::iter::Sum for MemoryUsage {
    fn sum<I: Iterator<Item = MemoryUsage>>(iter: I) -> Self {
        iter.fold(MemoryUsage::default(), |mut sum, usage| {
            sum.add(&usage);
            sum
        })
    }
}

/// The heap a `VecDeque` or `Vec` of `capacity` elements of `T` holds.
pub(crate) fn slots<T>(capacity: usize) -> usize {
    capacity.saturating_mul(std::mem::size_of::<T>())
}

/// The heap a `HashMap` of `capacity` entries holds: its buckets (a power
/// of two, an eighth of them left free) with one control byte each, and a
/// group of control bytes more.
pub(crate) fn map_slots<K, V>(capacity: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        if capacity < 4 {
            4
        } else {
            8
        }
    } else {
        (capacity.saturating_mul(8) / 7).next_power_of_two()
    };
    buckets
        .saturating_mul(std::mem::size_of::<(K, V)>() + 1)
        .saturating_add(16)
}
