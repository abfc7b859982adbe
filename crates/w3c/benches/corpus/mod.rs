//! How the readers' benchmarks build their corpora (the W3C reader's and,
//! through `#[path]`, the HttpProxy reader's): lines varied by one
//! deterministic xorshift stream, ten lines a second from midnight.

/// Calls `line` with `out`, the next xorshift value and the line's time of
/// day (hours, minutes, seconds) until `out` holds `target` bytes.
pub fn fill(out: &mut String, target: usize, mut line: impl FnMut(&mut String, u64, [u64; 3])) {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut i = 0u64;
    while out.len() < target {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let s = i / 10;
        line(out, x, [s / 3600 % 24, s / 60 % 60, s % 60]);
        i += 1;
    }
}
