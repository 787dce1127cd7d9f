//! `FrameHeader::parse` on arbitrary bytes.
//!
//! A parsed header re-encodes to bytes that parse back to the same header,
//! its reported length fits both the input and `MAX_HEADER_LEN`, and every
//! shorter prefix of the input asks for more bytes. Errors name what is
//! really in the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sansproto::ws::{FrameHeader, HeaderError, OpCode, MAX_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    match FrameHeader::parse(data) {
        Ok(Some((header, len))) => {
            assert!(
                len <= data.len(),
                "header length {len} > input {}",
                data.len()
            );
            assert!(
                len <= MAX_HEADER_LEN,
                "header length {len} > {MAX_HEADER_LEN}"
            );
            assert_eq!(header.rsv & !0x70, 0, "rsv outside the RSV bits");
            assert_eq!(
                header.payload_len >> 63,
                0,
                "64-bit length with the top bit set"
            );

            let mut encoded = Vec::new();
            header.encode(&mut encoded);
            // The encoder writes the shortest length form; the parser also
            // accepts longer ones, so the encoding is never longer.
            assert!(
                encoded.len() <= len,
                "re-encoded {} > parsed {len}",
                encoded.len()
            );
            assert_eq!(
                FrameHeader::parse(&encoded),
                Ok(Some((header, encoded.len()))),
                "re-encoding does not parse back to the same header"
            );

            // The header depends on its own bytes only.
            assert_eq!(FrameHeader::parse(&data[..len]), Ok(Some((header, len))));
            for cut in 0..len {
                assert_eq!(
                    FrameHeader::parse(&data[..cut]),
                    Ok(None),
                    "prefix of {cut} bytes is not 'need more'"
                );
            }
        }
        Ok(None) => {
            assert!(
                data.len() < MAX_HEADER_LEN,
                "{} bytes are enough for any header",
                data.len()
            );
        }
        Err(HeaderError::ReservedOpcode(op)) => {
            assert_eq!(Some(&op), data.first().map(|b| b & 0x0f).as_ref());
            assert_eq!(OpCode::from_u8(op), None, "opcode {op:#x} is not reserved");
        }
        Err(HeaderError::LengthOverflow) => {
            assert_eq!(data.get(1).map(|b| b & 0x7f), Some(127));
            assert!(data.get(2).is_some_and(|b| b & 0x80 != 0));
        }
    }
});
