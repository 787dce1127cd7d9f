//! Which `Origin`s may open a WebSocket.

use super::answer::Reject;
use super::upgrade::UpgradeRequest;

/// Which `Origin`s may open a WebSocket: the defence against cross-site
/// WebSocket hijacking, where a page on another site opens a connection
/// that carries the user's cookies.
///
/// Browsers always send `Origin`; other clients usually send none, so a
/// request without one is allowed unless [`require_origin`](Self::require_origin)
/// is set. Origins compare ASCII case-insensitively, as serialized
/// (`scheme://host[:port]`, no path).
///
/// ```
/// use sansproto::ws::OriginPolicy;
/// let policy = OriginPolicy::allow(["https://example.com", "http://localhost:8080"]);
/// assert!(policy.allows(Some("https://EXAMPLE.com")));
/// assert!(!policy.allows(Some("https://evil.example")));
/// assert!(!policy.allows(Some("null")));
/// assert!(policy.allows(None));
/// assert!(!policy.require_origin().allows(None));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPolicy {
    allowed: Vec<String>,
    allow_missing: bool,
}

impl OriginPolicy {
    /// Allows exactly these origins (and requests without `Origin`).
    pub fn allow<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            allowed: origins
                .into_iter()
                .map(|o| o.into().trim_end_matches('/').to_owned())
                .collect(),
            allow_missing: true,
        }
    }

    /// Refuses requests without `Origin` too.
    pub fn require_origin(mut self) -> Self {
        self.allow_missing = false;
        self
    }

    /// True when a request with this `Origin` (or none) may upgrade.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match origin {
            None => self.allow_missing,
            Some(o) => self
                .allowed
                .iter()
                .any(|a| a.eq_ignore_ascii_case(o.trim())),
        }
    }

    /// Checks a request: `Err` holds the 403 to answer it with. A request
    /// with more than one `Origin` field is refused (RFC 6454 §7.3 allows
    /// one; a second could hide a foreign origin behind an allowed one).
    pub fn check(&self, request: &UpgradeRequest) -> Result<(), Reject> {
        let headers = &request.request.headers;
        let allowed = match (headers.get_all("Origin").count(), headers.single("Origin")) {
            (0, _) => self.allow_missing,
            (_, Some(v)) => std::str::from_utf8(v).is_ok_and(|o| self.allows(Some(o))),
            (_, None) => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Reject::new(403).with_body("origin not allowed\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::handshake::upgrade::test_request as request;
    #[test]
    fn origin_policy() {
        let p = OriginPolicy::allow(["http://127.0.0.1:8080/"]);
        let ok = request(&[("Origin", "http://127.0.0.1:8080")]).unwrap();
        assert_eq!(p.check(&ok), Ok(()));
        assert_eq!(p.check(&request(&[]).unwrap()), Ok(()));
        let bad = request(&[("Origin", "http://evil.example")]).unwrap();
        assert_eq!(p.check(&bad).unwrap_err().status, 403);
        // A second Origin field, foreign or not, is refused.
        for second in ["http://evil.example", "http://127.0.0.1:8080"] {
            let mut two = request(&[("Origin", "http://127.0.0.1:8080")]).unwrap();
            two.request.headers.0.push(("Origin".into(), second.into()));
            assert_eq!(p.check(&two).unwrap_err().status, 403, "{second}");
        }
        assert_eq!(
            p.require_origin()
                .check(&request(&[]).unwrap())
                .unwrap_err()
                .status,
            403
        );
    }
}
