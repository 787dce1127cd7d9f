//! The last bytes a peer's messages inflated to, kept with context takeover
//! so that the LZ77 window outlives a DEFLATE stream the peer ended with a
//! final block (RFC 7692 §7.2.2, §7.2.3.4).

/// The last `size` bytes pushed, in a ring that grows to `size` bytes at
/// most and never reallocates once it has.
pub(super) struct History {
    /// In order while not full; once full, the oldest byte is at `next`.
    buf: Vec<u8>,
    next: usize,
    size: usize,
}

impl History {
    pub(super) fn new(size: usize) -> Self {
        Self {
            buf: Vec::new(),
            next: 0,
            size,
        }
    }

    /// Heap bytes held.
    pub(super) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends `data`, of which only the last `size` bytes can matter.
    pub(super) fn push(&mut self, mut data: &[u8]) {
        if data.len() >= self.size {
            data = &data[data.len() - self.size..];
            self.buf.clear();
            self.next = 0;
        }
        if self.buf.len() < self.size {
            let take = (self.size - self.buf.len()).min(data.len());
            let (now, rest) = data.split_at(take);
            let want = self.buf.len() + take;
            if want > self.buf.capacity() {
                // Doubling, as a Vec would, but never past `size`.
                let to = want.max(self.buf.capacity() * 2).min(self.size);
                self.buf.reserve_exact(to - self.buf.len());
            }
            self.buf.extend_from_slice(now);
            data = rest;
        }
        // Full: overwrite the oldest bytes.
        while !data.is_empty() {
            let n = (self.size - self.next).min(data.len());
            let (now, rest) = data.split_at(n);
            self.buf[self.next..self.next + n].copy_from_slice(now);
            self.next = (self.next + n) % self.size;
            data = rest;
        }
    }

    /// The kept bytes, oldest first.
    pub(super) fn contiguous(&mut self) -> &[u8] {
        self.buf.rotate_left(self.next);
        self.next = 0;
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::History;

    #[test]
    fn keeps_the_last_bytes_in_order() {
        let all: Vec<u8> = (0..200u8).collect();
        // The input cut into pushes of 1 to 10 bytes, and empty ones.
        for step in 0..10 {
            let mut h = History::new(16);
            let mut fed = 0;
            while fed < all.len() {
                let n = (1 + (fed + step) % (step + 1)).min(all.len() - fed);
                h.push(&all[fed..fed + n]);
                h.push(&[]);
                fed += n;
                let want = &all[fed.saturating_sub(16)..fed];
                assert_eq!(h.contiguous(), want, "step {step}, fed {fed}");
                assert!(h.capacity() <= 16);
            }
        }
        let mut h = History::new(16);
        h.push(&all[..3]);
        h.push(&all);
        assert_eq!(h.contiguous(), &all[184..]);
        assert_eq!(h.capacity(), 16);
    }
}
