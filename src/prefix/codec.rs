//! `tokio_util::codec` adapters over the same [`Decoder`] and [`Encoder`].

use super::{Config, DecodeError, Decoded, Decoder, EncodeError, Encoder};
use bytes::BytesMut;

/// Why a [`Codec`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The underlying transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The peer's byte stream could not be decoded (the stream is lost).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A frame could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// A frame to encode with its header: the bytes before the length field.
/// Items without a header (offset 0) can be passed as any `AsRef<[u8]>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithHeader<H, B>(pub H, pub B);

/// A `tokio_util::codec` `Decoder` and `Encoder` for one [`Config`],
/// wrapping the crate's own [`Decoder`] and [`Encoder`] (same limits, same
/// errors, no memory reserved from a claimed length). Its items are
/// [`Decoded`] so discarded frames are reported too.
///
/// ```
/// use bytes::BytesMut;
/// use sansproto::prefix::{Codec, Config, Decoded};
/// use tokio_util::codec::{Decoder as _, Encoder as _};
///
/// let mut codec = Codec::new(&Config::default());
/// let mut buf = BytesMut::new();
/// codec.encode(&b"hello"[..], &mut buf)?;
/// assert_eq!(codec.decode(&mut buf)?, Some(Decoded::Frame("hello".into())));
/// # Ok::<(), sansproto::prefix::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Codec {
    decoder: Decoder,
    encoder: Encoder,
}

impl Codec {
    /// A codec for `config`'s frame layout.
    pub fn new(config: &Config) -> Self {
        Self {
            decoder: Decoder::new(config),
            encoder: Encoder::new(config),
        }
    }
}

impl tokio_util::codec::Decoder for Codec {
    type Item = Decoded;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>, CodecError> {
        Ok(self.decoder.decode(src)?)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>, CodecError> {
        Ok(self.decoder.decode_eof(src)?)
    }
}

impl<B: AsRef<[u8]>> tokio_util::codec::Encoder<B> for Codec {
    type Error = CodecError;

    fn encode(&mut self, body: B, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encoder.encode_parts_to(&[], &[body.as_ref()], dst)?;
        Ok(())
    }
}

impl<H: AsRef<[u8]>, B: AsRef<[u8]>> tokio_util::codec::Encoder<WithHeader<H, B>> for Codec {
    type Error = CodecError;

    fn encode(&mut self, item: WithHeader<H, B>, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encoder
            .encode_parts_to(item.0.as_ref(), &[item.1.as_ref()], dst)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::codec::{Decoder as _, Encoder as _};

    #[test]
    fn header_frames_and_eof() {
        let config = Config::builder()
            .length_field_offset(1)
            .length_field_width(3)
            .strip(0)
            .build()
            .unwrap();
        let mut codec = Codec::new(&config);
        let mut buf = BytesMut::new();
        codec.encode(WithHeader([4u8], b"hi"), &mut buf).unwrap();
        assert_eq!(&buf[..], [4, 0, 0, 2, b'h', b'i']);
        assert!(matches!(
            codec.encode(&b"no header"[..], &mut buf),
            Err(CodecError::Encode(EncodeError::HeaderLength { .. }))
        ));
        buf.extend_from_slice(&[3, 0]);
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(Decoded::Frame(vec![4, 0, 0, 2, b'h', b'i'].into()))
        );
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(CodecError::Decode(DecodeError::Truncated {
                buffered: 2,
                frame_length: None
            }))
        ));
    }
}
