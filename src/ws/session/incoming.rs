//! The state of what is arriving: the frame whose payload is being
//! received, and the data message being reassembled.

use crate::ws::frame::OpCode;
use crate::ws::MessageKind;

/// A frame whose header has been read and whose payload is arriving.
#[derive(Debug, Clone, Copy)]
pub(super) struct InFrame {
    pub(super) fin: bool,
    pub(super) opcode: OpCode,
    pub(super) mask: Option<[u8; 4]>,
    /// Payload bytes of this frame not yet handed on.
    pub(super) remaining: usize,
    /// How many of the buffered payload bytes are already unmasked/validated.
    pub(super) done: usize,
    /// Mask phase of the first buffered payload byte.
    pub(super) offset: usize,
}

/// A data message being received.
#[derive(Debug)]
pub(super) struct InMessage {
    pub(super) kind: MessageKind,
    /// RSV bits of the first frame (the extension's marker).
    pub(super) rsv: u8,
    /// Frame payload bytes received so far (before any extension transform).
    pub(super) wire_len: usize,
    /// Reassembly buffer (unused for single-frame messages).
    pub(super) buf: Vec<u8>,
    /// Frames completed so far.
    pub(super) frames: usize,
    /// Streaming mode: pieces delivered so far.
    pub(super) pieces: usize,
}
