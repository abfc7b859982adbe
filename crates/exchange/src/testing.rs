//! What the crate's unit tests share.

/// The next state of a xorshift generator: random inputs for property tests,
/// deterministic, with no extra dependency.
pub(crate) fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}
