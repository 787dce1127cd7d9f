//! The one shape of a refused command, shared by every protocol.

use std::fmt;

/// A refused send: why (`kind`, one enum per protocol) and the payload,
/// handed back untouched. Nothing was queued.
///
/// Each protocol names it with its own kind:
/// [`ws::SendError`](crate::ws::SendError),
/// [`prefix::SendError`](crate::prefix::SendError) and
/// [`datagram::SendError`](crate::datagram::SendError).
///
/// ```
/// use sansproto::prefix::{Config, Connection, SendErrorKind};
/// use sansproto::Driver;
///
/// let mut conn = Connection::new(Config::default());
/// conn.close();
/// let err = conn.send(b"late".to_vec()).unwrap_err();
/// assert_eq!(err.kind(), &SendErrorKind::Closed);
/// assert_eq!(err.into_payload(), b"late");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SendError<T, K> {
    pub(crate) kind: K,
    pub(crate) payload: T,
}

impl<T, K> SendError<T, K> {
    /// A refusal of `payload` for `kind`.
    pub fn new(kind: K, payload: T) -> Self {
        Self { kind, payload }
    }

    /// Why the send was refused.
    pub fn kind(&self) -> &K {
        &self.kind
    }

    /// The payload that was not queued.
    pub fn payload(&self) -> &T {
        &self.payload
    }

    /// Takes the payload back.
    pub fn into_payload(self) -> T {
        self.payload
    }

    /// Takes the reason and the payload apart.
    pub fn into_parts(self) -> (K, T) {
        (self.kind, self.payload)
    }
}

/// Shows the kind only: payloads need not be `Debug`, and may be large.
impl<T, K: fmt::Debug> fmt::Debug for SendError<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<T, K: fmt::Display> fmt::Display for SendError<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "send refused: {}", self.kind)
    }
}

impl<T, K: fmt::Debug + fmt::Display> std::error::Error for SendError<T, K> {}
