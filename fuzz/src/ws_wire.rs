//! Checks the frames a connection sends: shared by the WebSocket targets.

use sansproto::ws::{apply_mask, CloseCode, FrameHeader, OpCode};

/// Follows one direction of a connection's output frame by frame.
pub struct Wire {
    /// Client output is masked, server output is not.
    masked: bool,
    close_sent: bool,
    /// Opcode of the data message whose frames are being sent, and its
    /// payload so far when it is text.
    message: Option<(OpCode, Vec<u8>)>,
}

impl Wire {
    pub fn new(masked: bool) -> Self {
        Self {
            masked,
            close_sent: false,
            message: None,
        }
    }

    /// Takes everything one `poll_transmit` call gave: it must be whole,
    /// well-formed frames, nothing but a Pong may follow a Close frame, and fragmented messages
    /// must be sequenced correctly.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut at = 0;
        while at < bytes.len() {
            let (header, len) = match FrameHeader::parse(&bytes[at..]) {
                Ok(Some(h)) => h,
                Ok(None) => panic!("partial frame header sent"),
                Err(e) => panic!("malformed frame header sent: {e:?}"),
            };
            let payload_len = usize::try_from(header.payload_len).expect("frame length fits usize");
            let end = at + len + payload_len;
            assert!(end <= bytes.len(), "partial frame payload sent");
            // After a Close only a Pong may go out: a Ping that came
            // before the peer's Close is still answered (RFC 6455 §5.5.2).
            assert!(
                !self.close_sent || header.opcode == OpCode::Pong,
                "{:?} frame sent after Close",
                header.opcode
            );
            assert_eq!(header.mask.is_some(), self.masked, "wrong masking");
            assert_eq!(header.rsv, 0, "RSV bits without an extension");
            let mut payload = bytes[at + len..end].to_vec();
            if let Some(key) = header.mask {
                apply_mask(&mut payload, key, 0);
            }
            if header.opcode.is_control() {
                assert!(header.fin, "fragmented control frame sent");
                assert!(
                    payload.len() <= 125,
                    "control frame of {} bytes sent",
                    payload.len()
                );
            }
            match header.opcode {
                OpCode::Close => {
                    check_close_payload(&payload);
                    self.close_sent = true;
                }
                OpCode::Ping | OpCode::Pong => {}
                OpCode::Text | OpCode::Binary => {
                    assert!(
                        self.message.is_none(),
                        "new message inside a fragmented one"
                    );
                    self.data(header.opcode, header.fin, payload);
                }
                OpCode::Continuation => {
                    let (opcode, _) = self
                        .message
                        .as_ref()
                        .expect("continuation frame sent without a message");
                    let opcode = *opcode;
                    self.data(opcode, header.fin, payload);
                }
            }
            at = end;
        }
    }

    fn data(&mut self, opcode: OpCode, fin: bool, payload: Vec<u8>) {
        let mut text = self
            .message
            .take()
            .map(|(_, so_far)| so_far)
            .unwrap_or_default();
        if opcode == OpCode::Text {
            text.extend_from_slice(&payload);
        }
        if fin {
            assert!(
                std::str::from_utf8(&text).is_ok(),
                "invalid UTF-8 text sent"
            );
        } else {
            self.message = Some((opcode, text));
        }
    }
}

fn check_close_payload(payload: &[u8]) {
    match payload {
        [] => {}
        [_] => panic!("one-byte Close payload sent"),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            assert!(CloseCode(code).is_sendable(), "close code {code} sent");
            assert!(
                std::str::from_utf8(reason).is_ok(),
                "close reason is not UTF-8"
            );
        }
    }
}
