//! Incremental UTF-8 validation that fails on the first invalid byte, even
//! when a character is split across frames or network reads.

/// Validates a byte stream piece by piece.
#[derive(Debug, Default, Clone)]
pub(crate) struct Utf8Validator {
    /// Bytes of a character whose remaining bytes have not arrived yet.
    partial: [u8; 4],
    partial_len: u8,
}

/// The stream is not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

/// Length of the character a lead byte starts (0 when it cannot lead).
fn char_width(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 0,
    }
}

/// True when `data` is whole, valid UTF-8 (SIMD where the CPU has it).
#[inline]
pub(crate) fn is_valid(data: &[u8]) -> bool {
    simdutf8::basic::from_utf8(data).is_ok()
}

/// Where a character that `data` ends in the middle of starts, or
/// `data.len()` when it ends on a character boundary (as far as its last
/// three bytes tell; anything invalid is left for validation to find).
#[inline]
fn incomplete_tail(data: &[u8]) -> usize {
    let len = data.len();
    for back in 1..=len.min(3) {
        let b = data[len - back];
        if b & 0xc0 != 0x80 {
            // A lead byte (or ASCII): incomplete when its character needs
            // more bytes than are left.
            return if char_width(b) > back {
                len - back
            } else {
                len
            };
        }
    }
    len
}

impl Utf8Validator {
    /// A validator at a character boundary.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Forgets any partial character (start of a new message).
    pub(crate) fn reset(&mut self) {
        self.partial_len = 0;
    }

    /// True when the bytes so far end on a character boundary.
    pub(crate) fn is_complete(&self) -> bool {
        self.partial_len == 0
    }

    /// Validates the next piece of the stream. Fails as soon as a byte makes
    /// the stream invalid, whether or not the character it belongs to is
    /// complete.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let have = usize::from(self.partial_len);
            let width = char_width(self.partial[0]);
            let take = width.saturating_sub(have).min(data.len());
            let (head, rest) = data.split_at(take);
            self.partial[have..have + take].copy_from_slice(head);
            let len = have + take;
            match std::str::from_utf8(&self.partial[..len]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                Err(_) => {
                    // Still incomplete: `data` was used up.
                    self.partial_len = len as u8;
                    return Ok(());
                }
            }
            data = rest;
        }
        // The bulk, up to the last character boundary, in one SIMD pass.
        let (body, tail) = data.split_at(incomplete_tail(data));
        if !is_valid(body) {
            return Err(InvalidUtf8);
        }
        // A character cut off at the end: kept, unless its first bytes
        // already rule it out.
        match std::str::from_utf8(tail) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(_) => {
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_every_split(bytes: &[u8]) -> Vec<bool> {
        (0..=bytes.len())
            .map(|i| {
                let mut v = Utf8Validator::new();
                let (a, b) = bytes.split_at(i);
                v.feed(a).is_ok() && v.feed(b).is_ok() && v.is_complete()
            })
            .collect()
    }

    #[test]
    fn valid_text_passes_at_every_split() {
        let text = "κόσμε ab € 𝄞 done".as_bytes();
        assert!(at_every_split(text).into_iter().all(|ok| ok));
        let mut v = Utf8Validator::new();
        for b in text {
            v.feed(std::slice::from_ref(b)).unwrap();
        }
        assert!(v.is_complete());
    }

    #[test]
    fn invalid_text_fails_at_every_split() {
        for bad in [
            &b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"[..],
            b"\xff",
            b"ab\xc0\xaf",
            b"\xf4\x90\x80\x80",
            b"\xe0\x80\x80",
        ] {
            assert!(at_every_split(bad).into_iter().all(|ok| !ok), "{bad:?}");
        }
    }

    #[test]
    fn fails_fast_before_the_character_completes() {
        // 0xf4 0x90 can never start a valid character: fail on the second byte.
        let mut v = Utf8Validator::new();
        v.feed(b"a\xf4").unwrap();
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
        // A surrogate lead 0xed 0xa0 fails before its last byte arrives.
        let mut v = Utf8Validator::new();
        v.feed(b"\xed").unwrap();
        assert_eq!(v.feed(b"\xa0"), Err(InvalidUtf8));
    }

    /// What std says about a stream cut into pieces: fails on the piece
    /// where std's `valid_up_to` stops being extendable, else passes.
    fn std_verdict(pieces: &[&[u8]]) -> (Option<usize>, bool) {
        let whole: Vec<u8> = pieces.concat();
        let mut seen = 0;
        for (i, p) in pieces.iter().enumerate() {
            seen += p.len();
            if let Err(e) = std::str::from_utf8(&whole[..seen]) {
                if e.error_len().is_some() {
                    return (Some(i), false);
                }
            }
        }
        (None, std::str::from_utf8(&whole).is_ok())
    }

    #[test]
    fn agrees_with_std_on_every_split_of_mixed_bytes() {
        let samples: [&[u8]; 8] = [
            "aé€𝄞 κόσμε ✓ 😀 plain ascii text that is long enough".as_bytes(),
            b"\xf0\x9f\x98\x80\xf0\x9f\x98",
            b"abc\xe2\x82\xac\xe2\x82",
            b"abc\xe2\x28\xa1def",
            b"\xed\x9f\xbf\xed\xa0\x80",
            b"\xf4\x8f\xbf\xbf\xf4\x90\x80\x80",
            b"\xc2\x80\xc1\xbf",
            b"\x80abc",
        ];
        for sample in samples {
            for i in 0..=sample.len() {
                for j in i..=sample.len() {
                    let pieces = [&sample[..i], &sample[i..j], &sample[j..]];
                    let mut v = Utf8Validator::new();
                    let failed_at = pieces.iter().position(|p| v.feed(p).is_err());
                    let complete = failed_at.is_none() && v.is_complete();
                    assert_eq!(
                        (failed_at, complete),
                        std_verdict(&pieces),
                        "{sample:?} split at {i}, {j}"
                    );
                }
            }
        }
    }

    #[test]
    fn incomplete_end_is_reported() {
        let mut v = Utf8Validator::new();
        v.feed(b"ok\xe2\x82").unwrap();
        assert!(!v.is_complete());
        v.reset();
        assert!(v.is_complete());
    }
}
