//! What the reader targets share: the first byte of the input picks small
//! limits, so that block and line-length edges are reached.

use w3c::ScanOptions;

/// Small limits picked by the first byte of `data`, and the rest of `data`.
pub fn small_limits(data: &[u8]) -> (ScanOptions, &[u8]) {
    let (knob, data) = data.split_first().unwrap_or((&0, data));
    let opts = ScanOptions {
        chunk_size: 1 + usize::from(knob & 0x3f),
        max_line: 16 + usize::from(knob >> 6) * 64,
        max_reported: 3,
        ..ScanOptions::default()
    };
    (opts, data)
}
