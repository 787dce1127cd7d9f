//! Send marks: above the high mark a machine is backpressured, and taking
//! the queue down to the low mark reports one `Drained` per crossing.

use bytes::{Buf, Bytes};

mod ws {
    use super::*;
    use sansproto::ws::{Config, ConfigError, Event, Role, Session};

    fn drained(s: &mut Session) -> usize {
        std::iter::from_fn(|| s.poll_event())
            .filter(|e| *e == Event::Drained)
            .count()
    }

    /// Takes `step` bytes at a time through `output`, counting the
    /// `Drained` events polled after each step.
    fn drain_in_steps(s: &mut Session, step: usize) -> usize {
        let mut events = 0;
        while s.buffered_amount() > 0 {
            let mut out = s.output();
            let n = step.min(out.remaining());
            out.advance(n);
            events += drained(s);
        }
        events
    }

    #[test]
    fn ws_marks_fire_once_per_crossing() {
        let config = Config::default().with_send_marks(1000, 200);
        assert_eq!(config.validate(), Ok(()));
        let mut s = Session::new(
            Role::Server,
            config,
            None,
            None,
            sansproto::seeded_random(1),
        );
        // 10 messages of 2 + 100 bytes: 1020 queued, above the high mark.
        for _ in 0..9 {
            s.send(Bytes::from(vec![1u8; 100])).unwrap();
            assert!(!s.is_backpressured());
        }
        s.send(Bytes::from(vec![1u8; 100])).unwrap();
        assert_eq!(s.buffered_amount(), 1020);
        assert!(s.is_backpressured());
        assert_eq!(drained(&mut s), 0);
        // Down in steps of 50: above the low mark it stays backpressured.
        let mut out = s.output();
        out.advance(800);
        assert!(s.is_backpressured(), "220 left, above the low mark");
        assert_eq!(drained(&mut s), 0);
        assert_eq!(drain_in_steps(&mut s, 50), 1, "exactly one Drained");
        assert!(!s.is_backpressured());

        // Again, taken with poll_transmit this time: another one.
        for _ in 0..10 {
            s.send(Bytes::from(vec![2u8; 100])).unwrap();
        }
        assert!(s.is_backpressured());
        let mut wire = Vec::new();
        s.poll_transmit(&mut wire);
        assert_eq!(drained(&mut s), 1);
        assert!(!s.is_backpressured());

        // Never above the high mark: no Drained.
        s.send(Bytes::from(vec![3u8; 500])).unwrap();
        assert_eq!(drain_in_steps(&mut s, 10), 0);
    }

    #[test]
    fn ws_no_marks_by_default_and_validation() {
        let mut s = Session::new(
            Role::Server,
            Config::default(),
            None,
            None,
            sansproto::seeded_random(2),
        );
        s.send(Bytes::from(vec![0u8; 1 << 20])).unwrap();
        assert!(!s.is_backpressured());
        s.poll_transmit(&mut Vec::new());
        assert_eq!(drained(&mut s), 0);
        for (high, low) in [(10, 10), (10, 20), (usize::MAX, 0)] {
            assert!(matches!(
                Config::default().with_send_marks(high, low).validate(),
                Err(ConfigError::SendMarks { .. })
            ));
        }
    }

    #[test]
    fn ws_connection_reports_drained_after_the_handshake() {
        use sansproto::ws::Connection;
        let config = Config::default().with_send_marks(100, 0);
        let mut c = Connection::after_handshake(
            Role::Server,
            config,
            None,
            None,
            sansproto::seeded_random(3),
        );
        c.send(Bytes::from(vec![0u8; 200])).unwrap();
        assert!(c.is_backpressured());
        c.poll_transmit(&mut Vec::new());
        assert!(!c.is_backpressured());
        assert_eq!(c.poll_event(), Some(Event::Drained));
        assert_eq!(c.poll_event(), None);
    }

    /// Messages sent before the handshake count for the marks while they
    /// wait: the request going out does not end the backpressure they
    /// cause, and taking them out once open reports `Drained`.
    #[test]
    fn ws_sends_before_the_handshake_count_for_the_marks() {
        use sansproto::ws::{ClientRequest, Connection};
        let config = || Config::default().with_send_marks(300, 10);
        let request = ClientRequest::new("example.com", "/");
        let mut c = Connection::client(config(), request).unwrap();
        let mut s = Connection::server(config());
        c.send(Bytes::from(vec![1u8; 200])).unwrap();
        assert!(c.buffered_amount() > 300);
        assert!(c.is_backpressured());
        let mut wire = Vec::new();
        c.poll_transmit(&mut wire);
        assert!(c.buffered_amount() > 10, "the message still waits");
        assert!(c.is_backpressured());
        assert_eq!(c.poll_event(), None);
        s.receive(&wire).unwrap();
        wire.clear();
        s.poll_transmit(&mut wire);
        c.receive(&wire).unwrap();
        assert!(matches!(c.poll_event(), Some(Event::Open(_))));
        assert!(c.is_backpressured());
        c.poll_transmit(&mut Vec::new());
        assert_eq!(c.buffered_amount(), 0);
        assert!(!c.is_backpressured());
        assert_eq!(c.poll_event(), Some(Event::Drained));
        assert_eq!(c.poll_event(), None);
    }

    /// A refused handshake drops the messages that waited for it: the
    /// connection is not left backpressured with nothing queued.
    #[test]
    fn ws_a_refused_handshake_ends_the_backpressure_of_its_sends() {
        use sansproto::ws::{ClientRequest, Connection};
        let config = Config::default().with_send_marks(300, 10);
        let request = ClientRequest::new("example.com", "/");
        let mut c = Connection::client(config, request).unwrap();
        c.send(Bytes::from(vec![1u8; 200])).unwrap();
        c.poll_transmit(&mut Vec::new());
        assert!(c.is_backpressured());
        let _ = c.receive(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        assert!(c.is_finished());
        assert_eq!(c.buffered_amount(), 0);
        assert!(!c.is_backpressured());
        let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
        assert!(!events.contains(&Event::Drained), "{events:?}");
    }

    /// Sends before the upgrade is accepted are charged before compression:
    /// above the high mark there, they drain once they go out, however
    /// small they compress to.
    #[cfg(feature = "deflate")]
    #[test]
    fn ws_sends_before_accepting_drain_once_compressed() {
        use sansproto::ws::{Accept, ClientRequest, Connection, DeflateConfig};
        let deflate = || Config::default().with_deflate(DeflateConfig::default());
        let mut s = Connection::server_with_decision(deflate().with_send_marks(2000, 10));
        let request = ClientRequest::new("example.com", "/");
        let mut c = Connection::client(deflate(), request).unwrap();
        let mut wire = Vec::new();
        c.poll_transmit(&mut wire);
        s.receive(&wire).unwrap();
        assert!(matches!(s.poll_event(), Some(Event::Upgrade(_))));
        s.send(Bytes::from(vec![0u8; 1990])).unwrap();
        assert!(s.is_backpressured(), "1990 and a header, over 2000");
        s.accept(Accept::new()).unwrap();
        assert!(s.is_backpressured(), "until the queue drains");
        s.poll_transmit(&mut Vec::new());
        assert!(!s.is_backpressured());
        let events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
        assert_eq!(
            events.iter().filter(|e| **e == Event::Drained).count(),
            1,
            "{events:?}"
        );
    }
}

mod prefix {
    use sansproto::prefix::{Config, ConfigError, Connection, Event};

    #[test]
    fn prefix_marks_fire_once_per_crossing() {
        let config = Config::builder()
            .max_queued_bytes(4096)
            .send_marks(100, 20)
            .build()
            .unwrap();
        let mut c = Connection::new(config);
        for round in 0..2 {
            c.send(&[0u8; 50][..]).unwrap(); // 54
            assert!(!c.is_backpressured());
            c.send(&[0u8; 50][..]).unwrap(); // 108
            assert!(c.is_backpressured(), "round {round}");
            assert_eq!(c.poll_event(), None);
            c.poll_transmit(&mut Vec::new());
            assert!(!c.is_backpressured());
            assert_eq!(c.poll_event(), Some(Event::Drained), "round {round}");
            assert_eq!(c.poll_event(), None, "once");
        }
        // Up to the high mark but not above it: nothing to report.
        c.send(&[0u8; 96][..]).unwrap();
        assert!(!c.is_backpressured());
        c.poll_transmit(&mut Vec::new());
        assert_eq!(c.poll_event(), None);
        // Drained after the connection ended: nothing can be sent, so
        // nothing is reported, as a WebSocket session reports nothing.
        c.send(&[0u8; 150][..]).unwrap();
        assert!(c.is_backpressured());
        c.close();
        let mut wire = Vec::new();
        c.poll_transmit(&mut wire);
        assert_eq!(wire.len(), 154, "the queued frame still goes out");
        assert_eq!(c.poll_event(), None);
    }

    #[test]
    fn prefix_marks_are_validated() {
        for (high, low, queue) in [(100, 100, 4096), (100, 200, 4096), (5000, 10, 4096)] {
            let built = Config::builder()
                .max_queued_bytes(queue)
                .send_marks(high, low)
                .build();
            assert_eq!(
                built.unwrap_err(),
                ConfigError::SendMarks {
                    high,
                    low,
                    limit: queue
                }
            );
        }
        assert!(Config::builder()
            .max_queued_bytes(4096)
            .send_marks(4096, 0)
            .build()
            .is_ok());
    }
}

mod datagram {
    use super::*;
    use sansproto::datagram::{Config, ConfigError, Endpoint, Event};

    #[test]
    fn datagram_marks_fire_once_per_crossing() {
        let mut config = Config::default();
        config.send_high_mark = Some(1000);
        config.send_low_mark = 300;
        let mut e = Endpoint::<u32>::with_random(config, sansproto::seeded_random(1)).unwrap();
        let drain = |e: &mut Endpoint<u32>| {
            let mut drained = 0;
            let mut out = Vec::new();
            while e.poll_transmit(&mut out).is_some() {
                out.clear();
                drained += std::iter::from_fn(|| e.poll_event())
                    .filter(|ev| *ev == Event::Drained)
                    .count();
            }
            drained
        };
        for _ in 0..2 {
            for _ in 0..11 {
                e.send(1, Bytes::from(vec![0u8; 100])).unwrap();
            }
            assert!(e.is_backpressured());
            // One datagram at a time: exactly one Drained, at 300 bytes.
            assert_eq!(drain(&mut e), 1);
            assert!(!e.is_backpressured());
        }
        for _ in 0..10 {
            e.send(1, Bytes::from(vec![0u8; 100])).unwrap();
        }
        assert!(!e.is_backpressured(), "at the high mark, not above");
        assert_eq!(drain(&mut e), 0);
    }

    #[test]
    fn datagram_marks_are_validated() {
        let mut config = Config::default();
        config.send_high_mark = Some(config.max_queued_bytes + 1);
        let limit = config.max_queued_bytes;
        assert_eq!(
            config.validate(),
            Err(ConfigError::SendMarks {
                high: limit + 1,
                low: 0,
                limit
            })
        );
        config.send_high_mark = Some(10);
        config.send_low_mark = 10;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::SendMarks { .. })
        ));
        config.send_low_mark = 9;
        assert_eq!(config.validate(), Ok(()));
    }
}
