//! permessage-deflate negotiation: the offer and response parameters
//! (RFC 7692 §7.1) and the server's and client's choices between them.

use super::codec::{Deflate, Side};
use super::{DeflateConfig, PERMESSAGE_DEFLATE};
use crate::ws::extension::{Extension, ExtensionFactory, ExtensionOffer, ExtensionParamError};

/// The negotiated parameters of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (offers only).
    client_max_window_bits: Option<Option<u8>>,
}

impl Params {
    /// Reads the parameters of one offer or response; fails on the first
    /// parameter that is unknown, repeated or has a bad value.
    fn parse(o: &ExtensionOffer) -> Result<Self, ExtensionParamError> {
        let mut p = Self::default();
        let mut seen = [false; 4];
        for (name, value) in &o.params {
            let slot = match name.as_str() {
                "server_no_context_takeover" => 0,
                "client_no_context_takeover" => 1,
                "server_max_window_bits" => 2,
                "client_max_window_bits" => 3,
                _ => return Err(ExtensionParamError::Unknown(name.clone())),
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err(ExtensionParamError::Repeated(name.clone()));
            }
            let invalid = || ExtensionParamError::InvalidValue(name.clone());
            let bits = || -> Result<u8, ExtensionParamError> {
                let v = value.as_deref().ok_or_else(invalid)?;
                if v.is_empty()
                    || v.len() > 2
                    || !v.bytes().all(|b| b.is_ascii_digit())
                    || v.starts_with('0')
                {
                    return Err(invalid());
                }
                v.parse::<u8>()
                    .ok()
                    .filter(|b| (8..=15).contains(b))
                    .ok_or_else(invalid)
            };
            match slot {
                0 | 1 if value.is_some() => return Err(invalid()),
                0 => p.server_no_context_takeover = true,
                1 => p.client_no_context_takeover = true,
                2 => p.server_max_window_bits = Some(bits()?),
                _ => {
                    p.client_max_window_bits = Some(match value {
                        None => None,
                        Some(_) => Some(bits()?),
                    })
                }
            }
        }
        Ok(p)
    }

    fn to_offer(self) -> ExtensionOffer {
        let mut params = Vec::new();
        if self.server_no_context_takeover {
            params.push(("server_no_context_takeover".to_owned(), None));
        }
        if self.client_no_context_takeover {
            params.push(("client_no_context_takeover".to_owned(), None));
        }
        if let Some(b) = self.server_max_window_bits {
            params.push(("server_max_window_bits".to_owned(), Some(b.to_string())));
        }
        if let Some(b) = self.client_max_window_bits {
            params.push((
                "client_max_window_bits".to_owned(),
                b.map(|b| b.to_string()),
            ));
        }
        ExtensionOffer {
            name: PERMESSAGE_DEFLATE.to_owned(),
            params,
        }
    }
}

/// Negotiates permessage-deflate; put it in
/// [`Config::extensions`](crate::ws::Config::extensions) (or use
/// [`Config::with_deflate`](crate::ws::Config::with_deflate)).
#[derive(Debug, Clone, Default)]
pub struct PerMessageDeflate {
    config: DeflateConfig,
}

impl PerMessageDeflate {
    /// A negotiator with these settings.
    pub fn new(config: DeflateConfig) -> Self {
        let mut config = config;
        config.level = config.level.min(9);
        config.server_max_window_bits = config.server_max_window_bits.clamp(8, 15);
        config.client_max_window_bits = config.client_max_window_bits.clamp(8, 15);
        Self { config }
    }

    /// Server side: the response to one offer, or `None` to decline it.
    fn answer(&self, offer: &Params) -> Option<Params> {
        let c = &self.config;
        let mut r = Params {
            server_no_context_takeover: offer.server_no_context_takeover
                || c.server_no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover
                || c.client_no_context_takeover,
            ..Params::default()
        };
        let server_bits = offer
            .server_max_window_bits
            .unwrap_or(15)
            .min(c.server_max_window_bits);
        if offer.server_max_window_bits.is_some() || server_bits < 15 {
            r.server_max_window_bits = Some(server_bits);
        }
        match offer.client_max_window_bits {
            Some(offered) => {
                let bits = offered.unwrap_or(15).min(c.client_max_window_bits);
                if bits < 15 || offered.is_some() {
                    r.client_max_window_bits = Some(Some(bits));
                }
            }
            // The client cannot be limited: decline if the policy needs to.
            None if c.client_max_window_bits < 15 => return None,
            None => {}
        }
        Some(r)
    }
}

impl ExtensionFactory for PerMessageDeflate {
    fn name(&self) -> &str {
        PERMESSAGE_DEFLATE
    }

    fn offer(&self) -> ExtensionOffer {
        let c = &self.config;
        Params {
            server_no_context_takeover: c.server_no_context_takeover,
            client_no_context_takeover: c.client_no_context_takeover,
            server_max_window_bits: (c.server_max_window_bits < 15)
                .then_some(c.server_max_window_bits),
            client_max_window_bits: Some(
                (c.client_max_window_bits < 15).then_some(c.client_max_window_bits),
            ),
        }
        .to_offer()
    }

    fn accept_offer(
        &self,
        offers: &[&ExtensionOffer],
    ) -> Option<(ExtensionOffer, Box<dyn Extension>)> {
        offers.iter().find_map(|o| {
            let r = self.answer(&Params::parse(o).ok()?)?;
            let ext = Deflate::new(
                self.config.level,
                self.config.threshold,
                Side {
                    no_context_takeover: r.server_no_context_takeover,
                    window_bits: r.server_max_window_bits.unwrap_or(15),
                },
                Side {
                    no_context_takeover: r.client_no_context_takeover,
                    window_bits: r.client_max_window_bits.flatten().unwrap_or(15),
                },
            )
            .skipping_incompressible(self.config.skip_incompressible);
            Some((r.to_offer(), Box::new(ext) as Box<dyn Extension>))
        })
    }

    fn accept_response(
        &self,
        response: &ExtensionOffer,
    ) -> Result<Box<dyn Extension>, ExtensionParamError> {
        let r = Params::parse(response)?;
        let c = &self.config;
        if c.server_no_context_takeover && !r.server_no_context_takeover {
            return Err(ExtensionParamError::NotAccepted(
                "server_no_context_takeover".into(),
            ));
        }
        let server_bits = r.server_max_window_bits.unwrap_or(15);
        if c.server_max_window_bits < 15 && server_bits > c.server_max_window_bits {
            return Err(ExtensionParamError::LargerThanOffered(
                "server_max_window_bits".into(),
            ));
        }
        let client_bits = match r.client_max_window_bits {
            Some(Some(b)) => b.min(c.client_max_window_bits),
            Some(None) => {
                return Err(ExtensionParamError::InvalidValue(
                    "client_max_window_bits".into(),
                ))
            }
            None => c.client_max_window_bits,
        };
        Ok(Box::new(
            Deflate::new(
                c.level,
                c.threshold,
                Side {
                    no_context_takeover: r.client_no_context_takeover
                        || c.client_no_context_takeover,
                    window_bits: client_bits,
                },
                Side {
                    no_context_takeover: r.server_no_context_takeover,
                    window_bits: server_bits,
                },
            )
            .skipping_incompressible(c.skip_incompressible),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(s: &str) -> ExtensionOffer {
        ExtensionOffer::parse_list(s).unwrap().remove(0)
    }

    #[test]
    fn parameters_are_validated() {
        assert!(Params::parse(&offer("permessage-deflate; client_max_window_bits")).is_ok());
        let invalid = |p: &str| ExtensionParamError::InvalidValue(p.into());
        for (bad, why) in [
            (
                "permessage-deflate; foo",
                ExtensionParamError::Unknown("foo".into()),
            ),
            (
                "permessage-deflate; server_max_window_bits=16",
                invalid("server_max_window_bits"),
            ),
            (
                "permessage-deflate; server_max_window_bits=7",
                invalid("server_max_window_bits"),
            ),
            (
                "permessage-deflate; server_max_window_bits=010",
                invalid("server_max_window_bits"),
            ),
            (
                "permessage-deflate; server_max_window_bits",
                invalid("server_max_window_bits"),
            ),
            (
                "permessage-deflate; server_no_context_takeover=1",
                invalid("server_no_context_takeover"),
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                ExtensionParamError::Repeated("server_no_context_takeover".into()),
            ),
        ] {
            assert_eq!(Params::parse(&offer(bad)), Err(why), "{bad}");
        }
    }

    #[test]
    fn server_answers() {
        let f = PerMessageDeflate::new(DeflateConfig::default());
        let o = offer("permessage-deflate; client_max_window_bits");
        let (r, _) = f.accept_offer(&[&o]).unwrap();
        assert_eq!(r.to_string(), "permessage-deflate");
        let o = offer("permessage-deflate; server_no_context_takeover; server_max_window_bits=9");
        let (r, _) = f.accept_offer(&[&o]).unwrap();
        assert_eq!(
            r.to_string(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
        );
        // An offer with an unknown parameter is declined; the next one is taken.
        let bad = offer("permessage-deflate; x=1");
        let good = offer("permessage-deflate");
        assert!(f.accept_offer(&[&bad, &good]).is_some());
        assert!(f.accept_offer(&[&bad]).is_none());
        // A server that caps the client's window declines clients that cannot be capped.
        let capped = PerMessageDeflate::new(DeflateConfig {
            client_max_window_bits: 10,
            ..DeflateConfig::default()
        });
        assert!(capped.accept_offer(&[&good]).is_none());
        let o = offer("permessage-deflate; client_max_window_bits");
        let (r, _) = capped.accept_offer(&[&o]).unwrap();
        assert_eq!(
            r.to_string(),
            "permessage-deflate; client_max_window_bits=10"
        );
    }

    #[test]
    fn client_checks_the_response() {
        let f = PerMessageDeflate::new(DeflateConfig {
            server_no_context_takeover: true,
            ..DeflateConfig::default()
        });
        assert_eq!(
            f.offer().to_string(),
            "permessage-deflate; server_no_context_takeover; client_max_window_bits"
        );
        assert_eq!(
            f.accept_response(&offer("permessage-deflate")).err(),
            Some(ExtensionParamError::NotAccepted(
                "server_no_context_takeover".into()
            ))
        );
        assert!(f
            .accept_response(&offer("permessage-deflate; server_no_context_takeover"))
            .is_ok());
        assert!(f
            .accept_response(&offer(
                "permessage-deflate; server_no_context_takeover; client_max_window_bits=8"
            ))
            .is_ok());
        assert_eq!(
            f.accept_response(&offer(
                "permessage-deflate; server_no_context_takeover; client_max_window_bits"
            ))
            .err(),
            Some(ExtensionParamError::InvalidValue(
                "client_max_window_bits".into()
            ))
        );
        let capped = PerMessageDeflate::new(DeflateConfig {
            server_max_window_bits: 10,
            ..DeflateConfig::default()
        });
        assert_eq!(
            capped
                .accept_response(&offer("permessage-deflate; server_max_window_bits=12"))
                .err(),
            Some(ExtensionParamError::LargerThanOffered(
                "server_max_window_bits".into()
            ))
        );
    }
}
