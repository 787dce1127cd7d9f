//! What the fuzz targets share.

pub mod ws_wire;
