//! The builder's checks.

use super::*;

#[test]
fn builder_validates() {
    // The defaults are the builder's, and pass its checks.
    let built = Config::builder().build().expect("the defaults are valid");
    assert_eq!(format!("{built:?}"), format!("{:?}", Config::default()));
    for w in [1, 2, 3, 4, 8] {
        assert!(Config::builder().length_field_width(w).build().is_ok());
    }
    for w in [0, 5, 6, 7, 9, 16] {
        assert_eq!(
            Config::builder().length_field_width(w).build().unwrap_err(),
            ConfigError::LengthFieldWidth { width: w }
        );
    }
    // A later varint() replaces an invalid width and vice versa.
    assert!(Config::builder()
        .length_field_width(5)
        .varint(VarintFormat::Leb128)
        .build()
        .is_ok());
    for n in [0, 11] {
        assert_eq!(
            Config::builder()
                .varint(VarintFormat::Ber)
                .varint_max_bytes(n)
                .build()
                .unwrap_err(),
            ConfigError::VarintMaxBytes { max_bytes: n }
        );
    }
    assert_eq!(
        Config::builder()
            .length_field_offset(2)
            .max_frame_length(5)
            .build()
            .unwrap_err(),
        ConfigError::MaxBelowHeader { max: 5, header: 6 }
    );
    assert_eq!(
        Config::builder()
            .strip(9)
            .max_frame_length(8)
            .build()
            .unwrap_err(),
        ConfigError::StripExceedsMax { strip: 9, max: 8 }
    );
    assert!(Config::builder()
        .length_field_offset(usize::MAX)
        .build()
        .is_err());
    assert!(Config::builder()
        .idle_timeout(Duration::ZERO)
        .build()
        .is_err());
    assert!(Config::builder()
        .heartbeat(Duration::ZERO, &b"x"[..])
        .build()
        .is_err());
    assert_eq!(
        Config::builder().max_queued_bytes(0).build().unwrap_err(),
        ConfigError::ZeroQueueLimit
    );
    let c = Config::builder().length_field_offset(3).build().unwrap();
    assert_eq!(c.length_field_offset(), 3);
    assert_eq!(c.max_header_length(), 7);
}
