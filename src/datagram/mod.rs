//! Datagram framing over a peer table.
