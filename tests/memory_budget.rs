//! `Config::memory_budget`: input past it fails the connection with the
//! close code that says why, and a send past it is refused with its
//! payload handed back.

use sansproto::ws::{Config, Connection, Error, Event, Role, SendErrorKind};

fn session(role: Role, config: Config) -> Connection {
    Connection::after_handshake(role, config, None, None, sansproto::seeded_random(5))
}

/// A client's wire bytes for `messages`, each cut into frames of
/// `fragment` bytes.
fn client_wire(fragment: usize, messages: &[Vec<u8>]) -> Vec<u8> {
    let mut client = session(Role::Client, Config::default().with_fragment_size(fragment));
    for m in messages {
        client.send_binary(m.clone()).unwrap();
    }
    let mut wire = Vec::new();
    client.poll_transmit(&mut wire);
    wire
}

/// The close code of the Close frame a server wrote (unmasked, first).
fn close_code(wire: &[u8]) -> u16 {
    assert_eq!(wire[0], 0x88, "a Close frame: {wire:02x?}");
    u16::from_be_bytes([wire[2], wire[3]])
}

/// Feeds `wire` to `server` in reads of `chunk`, polling nothing, until
/// it fails; returns the error.
fn feed_until_failure(server: &mut Connection, wire: &[u8], chunk: usize) -> Error {
    for piece in wire.chunks(chunk) {
        if let Err(e) = server.receive(piece) {
            return e;
        }
    }
    // A failure queued behind unpolled events is reported when they are.
    while let Some(event) = server.poll_event() {
        assert!(matches!(event, Event::Message(_)), "{event:?}");
    }
    server
        .error()
        .cloned()
        .expect("the budget failed the connection")
}

#[test]
fn a_message_arriving_past_the_budget_fails_with_1009() {
    for chunk in [1 << 20, 4096, 1000] {
        let budget = 64 << 10;
        let mut server = session(Role::Server, Config::default().with_memory_budget(budget));
        let wire = client_wire(8 << 10, &[vec![3u8; 200 << 10]]);
        let error = feed_until_failure(&mut server, &wire, chunk);
        let Error::OverBudget {
            held,
            budget: b,
            unpolled,
        } = error
        else {
            panic!("{error:?}");
        };
        assert!(held > budget && b == budget && !unpolled, "{error:?}");
        let mut out = Vec::new();
        server.poll_transmit(&mut out);
        assert_eq!(close_code(&out), 1009, "reads of {chunk}");
        assert_eq!(server.stats().errors.over_budget, 1);
        // Sticky: later input gets the same error.
        assert_eq!(server.receive(&wire[..10]), Err(error));
    }
}

#[test]
fn whole_messages_left_unpolled_past_the_budget_fail_with_1008() {
    let budget = 32 << 10;
    let mut server = session(Role::Server, Config::default().with_memory_budget(budget));
    let messages: Vec<Vec<u8>> = (0..20).map(|i| vec![i as u8; 3000]).collect();
    let wire = client_wire(1 << 20, &messages);
    let mut failed = None;
    for piece in wire.chunks(4000) {
        if let Err(e) = server.receive(piece) {
            failed = Some(e);
            break;
        }
    }
    // The messages taken before the budget was passed are still handed
    // out, then the failure.
    let mut delivered = 0;
    while let Some(event) = server.poll_event() {
        match event {
            Event::Message(m) => {
                assert_eq!(m.as_bytes(), &messages[delivered][..]);
                delivered += 1;
            }
            Event::Closed(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(delivered > 0 && delivered < 20, "{delivered} delivered");
    let error = failed.or_else(|| server.error().cloned()).expect("failed");
    assert!(
        matches!(error, Error::OverBudget { unpolled: true, .. }),
        "{error:?}"
    );
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    assert_eq!(close_code(&out), 1008);
}

#[test]
fn input_within_the_budget_flows() {
    let mut server = session(Role::Server, Config::default().with_memory_budget(64 << 10));
    let messages: Vec<Vec<u8>> = (0..50).map(|i| vec![i as u8; 3000]).collect();
    let wire = client_wire(1 << 20, &messages);
    let mut got = Vec::new();
    for piece in wire.chunks(4000) {
        server.receive(piece).unwrap();
        while let Some(Event::Message(m)) = server.poll_event() {
            got.push(m.as_bytes().to_vec());
        }
    }
    assert_eq!(got, messages);
    assert!(server.error().is_none());
}

#[test]
fn a_send_past_the_budget_is_refused_with_its_payload() {
    let budget = 64 << 10;
    let config = Config::default().with_memory_budget(budget);
    let mut server = session(Role::Server, config);
    let mut sent = 0;
    let refused = loop {
        match server.send_binary(vec![sent as u8; 10_000]) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(sent, 6, "six 10 kB messages fit in 64 KiB with the session");
    assert_eq!(refused.kind(), &SendErrorKind::OverBudget);
    assert_eq!(refused.payload().len(), 10_000);
    assert!(server.memory_usage().total() <= budget);
    // Borrowed sends are held to it too.
    let refused = server.send_text("x".repeat(10_000).as_str()).unwrap_err();
    assert_eq!(refused.kind(), &SendErrorKind::OverBudget);
    // Once the queue is written out, the refused message fits.
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    server.send(refused.into_payload()).unwrap();
    assert!(server.error().is_none());
}

#[test]
fn a_command_before_the_handshake_is_held_to_the_budget() {
    let config = Config::default().with_memory_budget(64 << 10);
    let request = sansproto::ws::ClientRequest::new("example.com", "/");
    let mut client = Connection::client(config, request).unwrap();
    client.send_binary(vec![1u8; 20_000]).unwrap();
    let refused = client.send_binary(vec![2u8; 60_000]).unwrap_err();
    assert_eq!(refused.kind(), &SendErrorKind::OverBudget);
    assert_eq!(refused.into_payload().as_bytes(), &vec![2u8; 60_000][..]);
}

#[test]
fn room_offered_to_a_read_before_the_handshake_is_not_charged_to_a_command() {
    // An async driver waits for the 101 with a read's room offered; that
    // room holds no data, so it is not charged, before the handshake as
    // after it.
    let config = Config::default().with_memory_budget(100_000);
    let request = sansproto::ws::ClientRequest::new("example.com", "/");
    let mut client = Connection::client(config, request).unwrap();
    client.poll_transmit(&mut Vec::new());
    assert!(client.receive_buffer(64 << 10).unwrap().len() >= 64 << 10);
    client.send_binary(vec![1u8; 40_000]).unwrap();
    let refused = client.send_binary(vec![2u8; 60_000]).unwrap_err();
    assert_eq!(refused.kind(), &SendErrorKind::OverBudget);
}

#[test]
fn a_zero_budget_is_a_config_error() {
    use sansproto::ws::ConfigError;
    assert_eq!(
        Config::default().with_memory_budget(0).validate(),
        Err(ConfigError::Zero {
            name: "memory_budget"
        })
    );
}

mod prefix {
    use sansproto::prefix::{Config, ConfigError, Connection, DecodeError, Event, SendErrorKind};

    fn budgeted(budget: usize) -> Connection {
        let config = Config::builder().memory_budget(budget).build().unwrap();
        Connection::new(config)
    }

    #[test]
    fn a_frame_arriving_past_the_budget_fails_the_connection() {
        // A 100 kB frame's length arrives, then its body, read by read.
        let mut frame = 100_000u32.to_be_bytes().to_vec();
        frame.extend(vec![5u8; 100_000]);
        for chunk in [1 << 20, 4096, 999] {
            let mut c = budgeted(32 << 10);
            let error = frame
                .chunks(chunk)
                .find_map(|piece| c.receive(piece).err())
                .expect("the budget fails the connection");
            assert!(
                matches!(error, DecodeError::OverBudget { held, budget: 32768 } if held > 32768),
                "{error:?}"
            );
            assert_eq!(c.error(), Some(&error));
            assert_eq!(c.receive(b"more"), Err(error));
            assert_eq!(c.stats().errors.over_budget, 1);
            assert!(
                c.memory_usage().receive < 1024,
                "the partial frame is let go"
            );
        }
    }

    #[test]
    fn frames_polled_as_they_come_stay_within_it() {
        let mut c = budgeted(32 << 10);
        let mut sender = Connection::new(Config::default());
        for i in 0..100u8 {
            sender.send(vec![i; 3_000]).unwrap();
        }
        let mut wire = Vec::new();
        sender.poll_transmit(&mut wire);
        let mut got = 0u8;
        for piece in wire.chunks(8_000) {
            c.receive(piece).unwrap();
            while let Some(Event::Frame(f)) = c.poll_event() {
                assert_eq!(f[..], vec![got; 3_000][..]);
                got += 1;
            }
        }
        assert_eq!(got, 100);
    }

    #[test]
    fn a_send_past_the_budget_is_refused_with_its_payload() {
        let mut c = budgeted(64 << 10);
        let mut sent = 0;
        let refused = loop {
            match c.send(vec![1u8; 10_000]) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
        };
        // Refused exactly when the next frame would pass the budget.
        assert!(sent >= 4, "{sent} sent");
        assert!(c.memory_usage().total() + 10_004 > 65536);
        assert!(matches!(
            refused.kind(),
            SendErrorKind::OverBudget {
                frame: 10_004,
                budget: 65536,
                ..
            }
        ));
        assert_eq!(refused.payload().len(), 10_000);
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        c.send(refused.into_payload()).unwrap();
    }

    #[test]
    fn a_heartbeat_that_would_pass_the_budget_is_skipped() {
        use std::time::{Duration, Instant};
        let second = Duration::from_secs(1);
        let beat = vec![0u8; 4_000];
        let config = Config::builder()
            .memory_budget(64 << 10)
            .heartbeat(second, beat.clone())
            .build()
            .unwrap();
        let mut c = Connection::new(config);
        // Fill the queue to just under the budget with unsent frames.
        while c.send(vec![1u8; 1_000]).is_ok() {}
        let held = c.memory_usage().total();
        let start = Instant::now();
        c.handle_timeout(start);
        c.handle_timeout(start + second);
        assert_eq!(c.stats().heartbeats, 0);
        assert_eq!(c.stats().heartbeats_skipped, 1);
        assert_eq!(c.memory_usage().total(), held);
        // Once the queue is written out, the next one goes.
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        c.handle_timeout(start + 2 * second);
        assert_eq!(c.stats().heartbeats, 1);
        out.clear();
        c.poll_transmit(&mut out);
        assert_eq!(out.len(), beat.len());
    }

    #[test]
    fn a_zero_budget_is_a_config_error() {
        assert_eq!(
            Config::builder().memory_budget(0).build().unwrap_err(),
            ConfigError::ZeroMemoryBudget
        );
    }
}

/// Reading straight into the machines offers room for a whole socket read
/// (64 KiB and more); the budget is charged for the bytes held, not that
/// room, so a budget smaller than a read still lets small messages through.
#[test]
fn reads_into_the_buffer_are_charged_for_their_bytes_not_their_room() {
    let config = Config::default().with_memory_budget(16 << 10);
    let mut server = session(Role::Server, config);
    let messages: Vec<Vec<u8>> = (0..30).map(|i| vec![i as u8; 500]).collect();
    let wire = client_wire(1 << 20, &messages);
    let mut got = 0;
    for piece in wire.chunks(700) {
        let room = server.receive_buffer(64 << 10).expect("room to read into");
        room[..piece.len()].copy_from_slice(piece);
        server.commit_received(piece.len()).unwrap();
        while let Some(Event::Message(m)) = server.poll_event() {
            assert_eq!(m.as_bytes(), &messages[got][..]);
            got += 1;
        }
    }
    assert_eq!(got, 30);
    assert!(server.error().is_none());

    use sansproto::prefix;
    let config = prefix::Config::builder()
        .memory_budget(16 << 10)
        .build()
        .unwrap();
    let mut conn = prefix::Connection::new(config);
    let mut frame = 500u32.to_be_bytes().to_vec();
    frame.extend([7u8; 500]);
    for _ in 0..30 {
        let buf = conn.receive_buf_mut(64 << 10).expect("room to read into");
        buf.extend_from_slice(&frame);
        conn.commit_appended().unwrap();
        assert!(matches!(conn.poll_event(), Some(prefix::Event::Frame(f)) if f.len() == 500));
    }
}

#[test]
fn under_a_budget_large_payloads_are_still_shared_and_prepared_frames_too() {
    use bytes::Buf;
    use sansproto::ws::Message;
    let payload = bytes::Bytes::from(vec![9u8; 1 << 20]);
    for fragment in [None, Some(2 << 20)] {
        let mut config = Config::default().with_memory_budget(4 << 20);
        config.fragment_size = fragment;
        let mut server = session(Role::Server, config);
        server.send(Message::Binary(payload.clone())).unwrap();
        let prepared = Message::Binary(payload.clone()).prepare();
        server.send_prepared(&prepared).unwrap();
        let mut out = server.output();
        let mut slices = [std::io::IoSlice::new(&[]); 4];
        // The header, the payload itself, then the prepared frame itself.
        assert_eq!(out.chunks_vectored(&mut slices), 3);
        assert_eq!(slices[1].as_ptr(), payload.as_ptr());
        assert_eq!(&slices[2][..], prepared.frame());
        assert_eq!(out.remaining(), 2 * (payload.len() + 10));
        out.advance(out.remaining());
        // Past the budget, both are refused with the payload handed back.
        let big = bytes::Bytes::from(vec![1u8; 5 << 20]);
        let refused = server.send(Message::Binary(big.clone())).unwrap_err();
        assert_eq!(refused.kind(), &SendErrorKind::OverBudget);
        let prepared = Message::Binary(big).prepare();
        let refused = server.send_prepared(&prepared).unwrap_err();
        assert_eq!(refused.kind(), &SendErrorKind::OverBudget);
    }
}

/// A server with permessage-deflate (context takeover) under `budget`.
fn deflate_server(budget: usize) -> Connection {
    use sansproto::ws::{DeflateConfig, ExtensionFactory, ExtensionOffer, PerMessageDeflate};
    let factory = PerMessageDeflate::new(DeflateConfig::default());
    let offer = ExtensionOffer::parse_list("permessage-deflate")
        .unwrap()
        .remove(0);
    let (_, ext) = factory.accept_offer(&[&offer]).unwrap();
    Connection::after_handshake(
        Role::Server,
        Config::default().with_memory_budget(budget),
        None,
        Some(ext),
        sansproto::seeded_random(3),
    )
}

#[test]
fn the_compressor_a_first_compressed_send_would_keep_is_charged_up_front() {
    let text = "the same words again and again ".repeat(40);
    // Room for the message, not for zlib's compressor (about 380 KB).
    let mut server = deflate_server(200 << 10);
    let refused = server.send_text(text.as_str()).unwrap_err();
    assert_eq!(refused.kind(), &SendErrorKind::OverBudget);
    assert_eq!(refused.payload().as_bytes(), text.as_bytes());
    assert_eq!(server.memory_usage().compression, server_compression_idle());
    // Below the compression threshold nothing is created: it goes out.
    server.send_text("short").unwrap();
    // With room for both, the send goes out and the compressor is held
    // within the budget, so the next input does not fail.
    let mut server = deflate_server(1 << 20);
    server.send_text(text.as_str()).unwrap();
    let usage = server.memory_usage();
    assert!(usage.compression > 300_000, "{usage:?}");
    assert!(usage.total() <= 1 << 20);
    assert_eq!(server.receive(b"\x89\x80\0\0\0\0").unwrap(), 6);
    assert!(server.error().is_none());
}

/// The compression part of an idle deflate server: the extension value
/// alone, no zlib state.
fn server_compression_idle() -> usize {
    deflate_server(1 << 20).memory_usage().compression
}

#[test]
fn a_compressed_frame_is_inflated_no_further_than_the_budget() {
    use sansproto::ws::{DeflateConfig, ExtensionFactory, ExtensionOffer, PerMessageDeflate};
    let factory = PerMessageDeflate::new(DeflateConfig::default());
    let offer = ExtensionOffer::parse_list("permessage-deflate")
        .unwrap()
        .remove(0);
    let client_ext = factory.accept_response(&offer).unwrap();
    let mut client = Connection::after_handshake(
        Role::Client,
        Config::default(),
        None,
        Some(client_ext),
        sansproto::seeded_random(6),
    );
    // 32 MiB of zeros in one frame of about 32 KB: within the message
    // limit (64 MiB), far past the budget.
    client.send_binary(vec![0u8; 32 << 20]).unwrap();
    let mut wire = Vec::new();
    client.poll_transmit(&mut wire);
    assert!(wire.len() < 64 << 10, "{}", wire.len());
    let budget = 256 << 10;
    for read in [wire.len(), 4096] {
        let mut server = deflate_server(budget);
        let error = feed_until_failure(&mut server, &wire, read);
        let Error::OverBudget { held, .. } = error else {
            panic!("{error:?}")
        };
        // It stopped inflating at the budget, not at the message's end.
        assert!(held > budget && held < 2 * budget, "held {held}");
        let mut out = Vec::new();
        server.poll_transmit(&mut out);
        assert_eq!(close_code(&out), 1009);
        let events: Vec<_> = std::iter::from_fn(|| server.poll_event()).collect();
        assert!(
            events.iter().all(|e| !matches!(e, Event::Message(_))),
            "no message past the budget reaches the application: {events:?}"
        );
    }
}

#[test]
fn input_parsed_once_the_event_queue_drains_is_held_to_the_budget() {
    use sansproto::ws::{DeflateConfig, ExtensionFactory, ExtensionOffer, PerMessageDeflate};
    let factory = PerMessageDeflate::new(DeflateConfig::default());
    let offer = ExtensionOffer::parse_list("permessage-deflate")
        .unwrap()
        .remove(0);
    let (_, server_ext) = factory.accept_offer(&[&offer]).unwrap();
    let client_ext = factory.accept_response(&offer).unwrap();
    let with_ext = |role, config, ext| {
        Connection::after_handshake(role, config, None, Some(ext), sansproto::seeded_random(4))
    };
    let mut client = with_ext(Role::Client, Config::default(), client_ext);
    client.ping("first").unwrap();
    // 256 KiB that deflate packs into a few hundred bytes.
    let inflated = "a".repeat(256 << 10);
    client.send_text(inflated.as_str()).unwrap();
    let mut wire = Vec::new();
    client.poll_transmit(&mut wire);
    assert!(wire.len() < 4096);
    let budget = 128 << 10;
    let config = Config::default()
        .with_memory_budget(budget)
        .with_max_pending_events(1);
    let mut server = with_ext(Role::Server, config, server_ext);
    // One read: the ping is parsed, the message waits behind it.
    assert_eq!(server.receive(&wire).unwrap(), wire.len());
    assert!(server.error().is_none());
    assert!(matches!(server.poll_event(), Some(Event::Ping(_))));
    // Polling the ping resumed the parse, which inflated the message past
    // the budget: the connection fails then, behind the events already
    // parsed, without waiting for another read.
    let mut closed = false;
    while let Some(event) = server.poll_event() {
        match event {
            Event::Message(m) => assert_eq!(m.len(), inflated.len()),
            Event::Closed(_) => closed = true,
            other => panic!("{other:?}"),
        }
    }
    assert!(closed);
    let error = server.error().cloned().expect("over its budget");
    assert!(
        matches!(error, Error::OverBudget { budget: b, held, .. } if b == budget && held > budget),
        "{error:?}"
    );
}

#[test]
fn a_close_answered_within_a_read_is_not_failed_by_the_budget_after_it() {
    use sansproto::ws::{CloseCode, Closed};
    let idle = session(Role::Server, Config::default())
        .memory_usage()
        .total();
    // Room for the peer's Close frame (108 bytes) but not for it and the
    // answer and the event it leaves.
    let mut server = session(
        Role::Server,
        Config::default().with_memory_budget(idle + 200),
    );
    let mut client = session(Role::Client, Config::default());
    client.close(CloseCode::NORMAL, &"r".repeat(100)).unwrap();
    let mut wire = Vec::new();
    client.poll_transmit(&mut wire);
    assert_eq!(wire.len(), 108);
    assert_eq!(server.receive(&wire).unwrap(), 108);
    assert!(server.is_finished());
    assert!(server.error().is_none());
    let mut closed = Vec::new();
    while let Some(event) = server.poll_event() {
        match event {
            Event::Closed(c) => closed.push(c),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(closed.len(), 1, "{closed:?}");
    let Closed { code, clean, .. } = &closed[0];
    assert_eq!((*code, *clean), (CloseCode::NORMAL, true));
}

#[test]
fn a_message_sent_before_the_handshake_keeps_to_the_budget_once_it_opens() {
    use sansproto::ws::{ClientRequest, DeflateConfig, Message};
    let budget = 250 << 10;
    let config = Config::default()
        .with_deflate(DeflateConfig::default())
        .with_memory_budget(budget);
    let request = ClientRequest::new("example.com", "/");
    let mut client = Connection::client(config, request).unwrap();
    let text = "the same words again and again ".repeat(40);
    client.send_text(text.as_str()).unwrap();
    let mut server = Connection::server(Config::default().with_deflate(DeflateConfig::default()));
    let mut wire = Vec::new();
    for _ in 0..4 {
        client.poll_transmit(&mut wire);
        server.receive(&wire).unwrap();
        wire.clear();
        server.poll_transmit(&mut wire);
        client.receive(&wire).unwrap();
        wire.clear();
    }
    assert!(client.is_open());
    assert!(client.memory_usage().total() <= budget);
    // The compressor did not fit: the message went out uncompressed.
    let mut got = None;
    while let Some(event) = server.poll_event() {
        if let Event::Message(m) = event {
            got = Some(m);
        }
    }
    assert_eq!(got, Some(Message::from(text.as_str())));
    assert_eq!(client.stats().compression_tx.messages, 0);
    // And later input does not fail it.
    server.ping("still there").unwrap();
    server.poll_transmit(&mut wire);
    client.receive(&wire).unwrap();
    assert!(client.error().is_none());
}
