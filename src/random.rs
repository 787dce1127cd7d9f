//! Randomness for client masking keys, handshake nonces and datagram
//! message ids, behind a trait this crate owns, so that no random-number
//! crate is part of its API.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A source of random bytes. Masking keys (RFC 6455 §5.3) must be
/// unpredictable to the peer's intermediaries, so a real connection wants a
/// cryptographically secure source: [`default_random`] is one, seeded from
/// the operating system. [`seeded_random`] gives the same bytes on every
/// run, for tests.
///
/// Any generator can be plugged in:
///
/// ```
/// use sansproto::RandomSource;
///
/// /// A counter: predictable, so for tests only.
/// struct Counter(u8);
///
/// impl RandomSource for Counter {
///     fn fill_bytes(&mut self, dest: &mut [u8]) {
///         for b in dest {
///             self.0 = self.0.wrapping_add(1);
///             *b = self.0;
///         }
///     }
/// }
///
/// let mut random: sansproto::Random = Box::new(Counter(0));
/// let mut key = [0u8; 4];
/// random.fill_bytes(&mut key);
/// assert_eq!(key, [1, 2, 3, 4]);
/// ```
pub trait RandomSource: Send + Sync {
    /// Fills `dest` with random bytes.
    fn fill_bytes(&mut self, dest: &mut [u8]);

    /// Four random bytes (a masking key, say).
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0u8; 4];
        self.fill_bytes(&mut bytes);
        u32::from_ne_bytes(bytes)
    }
}

/// The randomness a machine owns.
pub type Random = Box<dyn RandomSource>;

impl<R: RandomSource + ?Sized> RandomSource for Box<R> {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        (**self).fill_bytes(dest);
    }

    fn next_u32(&mut self) -> u32 {
        (**self).next_u32()
    }
}

/// The generator behind [`default_random`] and [`seeded_random`]: a
/// ChaCha-based CSPRNG.
struct ChaCha(StdRng);

impl RandomSource for ChaCha {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }

    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
}

/// The default randomness source: a ChaCha-based CSPRNG seeded from the
/// operating system.
///
/// # Panics
///
/// When the operating system has no entropy to give (early boot, a
/// sandbox without `getrandom`): masking keys must not be guessable, so
/// there is no fallback.
pub fn default_random() -> Random {
    Box::new(ChaCha(rand::make_rng()))
}

/// A deterministic randomness source, for tests that want byte-exact output.
pub fn seeded_random(seed: u64) -> Random {
    Box::new(ChaCha(StdRng::seed_from_u64(seed)))
}
