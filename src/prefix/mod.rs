//! Length-prefixed stream framing.
