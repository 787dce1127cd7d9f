//! Every protocol refuses a configuration it cannot run with, with a typed
//! error naming what is wrong.

use sansproto::{datagram, prefix, ws};
use std::time::Duration;

#[test]
fn ws_refuses_zero_limits_and_a_handshake_limit_too_small() {
    assert_eq!(ws::Config::default().validate(), Ok(()));
    assert_eq!(
        ws::Config::default().with_max_pending_events(0).validate(),
        Err(ws::ConfigError::Zero {
            name: "max_pending_events"
        })
    );
    let mut zero_fragments = ws::Config::default();
    zero_fragments.fragment_size = Some(0);
    assert_eq!(
        zero_fragments.validate(),
        Err(ws::ConfigError::Zero {
            name: "fragment_size"
        })
    );
    assert_eq!(
        ws::Config::default()
            .with_keepalive(Duration::from_secs(30), Duration::ZERO)
            .validate(),
        Err(ws::ConfigError::Zero {
            name: "pong_timeout"
        })
    );
    // Without keepalive the pong timeout is not used, so it is not checked.
    let mut idle = ws::Config::default();
    idle.pong_timeout = Duration::ZERO;
    assert_eq!(idle.validate(), Ok(()));
    assert_eq!(
        ws::Config::default()
            .with_handshake_limits(64, 16)
            .validate(),
        Err(ws::ConfigError::TooSmall {
            name: "max_handshake_size",
            value: 64,
            needed: ws::MIN_HANDSHAKE_SIZE,
        })
    );
}

#[test]
fn prefix_refuses_a_width_no_frame_has_and_a_zero_event_bound() {
    assert_eq!(
        prefix::Config::builder()
            .length_field_width(5)
            .build()
            .err(),
        Some(prefix::ConfigError::LengthFieldWidth { width: 5 })
    );
    assert_eq!(
        prefix::Config::builder()
            .max_pending_events(0)
            .build()
            .err(),
        Some(prefix::ConfigError::ZeroEventLimit)
    );
}

#[test]
fn datagram_refuses_an_mtu_out_of_range_and_a_zero_limit() {
    let mut config = datagram::Config::default();
    config.mtu = datagram::MTU_MAX_IPV6 + 1;
    assert!(matches!(
        datagram::Endpoint::<u8>::new(config).err(),
        Some(datagram::ConfigError::MtuOutOfRange { mtu, .. }) if mtu == datagram::MTU_MAX_IPV6 + 1
    ));
    let mut config = datagram::Config::default();
    config.max_pending_events = 0;
    assert_eq!(
        config.validate(),
        Err(datagram::ConfigError::Zero {
            name: "max_pending_events"
        })
    );
}
