//! Why a prefix [`Builder`](super::Builder) refuses to build.

/// Why a [`Builder`](super::Builder) refused to build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A fixed length field must be 1, 2, 3, 4 or 8 bytes wide.
    #[error("length field width {width} is not 1, 2, 3, 4 or 8")]
    LengthFieldWidth {
        /// The width asked for.
        width: usize,
    },
    /// A varint length field is bounded to 1 to 10 bytes.
    #[error("varint length field bound {max_bytes} is not within 1..=10")]
    VarintMaxBytes {
        /// The bound asked for.
        max_bytes: usize,
    },
    /// The offset is so large that header arithmetic would overflow.
    #[error("length field offset {offset} is too large")]
    OffsetTooLarge {
        /// The offset asked for.
        offset: usize,
    },
    /// The whole-frame limit is smaller than the shortest possible header,
    /// so no frame could ever be accepted.
    #[error("max frame length {max} is below the {header}-byte header")]
    MaxBelowHeader {
        /// The limit asked for.
        max: usize,
        /// The shortest header.
        header: usize,
    },
    /// More bytes would be stripped than a frame under the whole-frame limit
    /// can hold.
    #[error("stripping {strip} bytes exceeds the max frame length {max}")]
    StripExceedsMax {
        /// Bytes to strip.
        strip: usize,
        /// The whole-frame limit.
        max: usize,
    },
    /// A timer interval of zero.
    #[error("{what} must be longer than zero")]
    ZeroDuration {
        /// Which option.
        what: &'static str,
    },
    /// A send queue limit of zero would refuse every frame.
    #[error("the send queue limit must be at least one byte")]
    ZeroQueueLimit,
    /// A memory budget of zero would refuse everything.
    #[error("the memory budget must be at least one byte")]
    ZeroMemoryBudget,
    /// An event bound of zero would never take input.
    #[error("the pending event bound must be at least one")]
    ZeroEventLimit,
    /// The send marks are out of order: the low mark must be below the
    /// high mark, and the high mark at most the send queue limit.
    #[error(
        "send marks must satisfy low ({low}) < high ({high}) <= the send queue limit ({limit})"
    )]
    SendMarks {
        /// The high mark.
        high: usize,
        /// The low mark.
        low: usize,
        /// The send queue limit.
        limit: usize,
    },
}
