//! Per-walker random streams: one PCG-64 stream per walker, keyed by (seed, walker).
//!
//! Every random draw of the sampler comes from the stream of the walker it is for,
//! and is drawn on the coordinator, so chains do not depend on threads or ranks.

use rand::RngCore;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

/// SplitMix64 finaliser, to spread a user seed over 128 bits of PCG state.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The stream of walker `walker` for `seed`.
pub fn walker_rng(seed: u64, walker: usize) -> Pcg64 {
    let hi = splitmix64(seed) as u128;
    let lo = splitmix64(seed ^ 0xD1B5_4A32_D192_ED03) as u128;
    Pcg64::new((hi << 64) | lo, walker as u128)
}

/// A uniform index in `0..n` from one 32-bit draw (two in rare cases), `n ≥ 1`.
///
/// This is the algorithm `rand` 0.9 uses for `rng.random_range(0..n)` with a
/// `usize` range that fits in 32 bits (a widening multiply, with a second draw to
/// reduce bias when the low word lands in the top `n` values), written out so
/// that it inlines into the sampler's proposal loop and so that chains depend on
/// this code only, not on `rand`'s feature flags. A test checks it against `rand`.
#[inline(always)]
pub fn pick_below(rng: &mut Pcg64, n: u32) -> u32 {
    debug_assert!(n >= 1);
    let m = (rng.next_u32() as u64) * (n as u64);
    let (mut hi, lo) = ((m >> 32) as u32, m as u32);
    if lo > n.wrapping_neg() {
        let hi2 = (((rng.next_u32() as u64) * (n as u64)) >> 32) as u32;
        hi += lo.checked_add(hi2).is_none() as u32;
    }
    hi
}

/// All walkers' streams.
pub fn walker_rngs(seed: u64, n_walkers: usize) -> Vec<Pcg64> {
    (0..n_walkers).map(|k| walker_rng(seed, k)).collect()
}

#[derive(Serialize, Deserialize)]
struct PcgState {
    state: u128,
    increment: u128,
}

/// A stream's state as four u64 words `[state_hi, state_lo, inc_hi, inc_lo]`
/// (the form stored in chain files).
pub fn rng_to_words(rng: &Pcg64) -> [u64; 4] {
    let text = serde_json::to_string(rng).expect("Pcg64 serialises");
    let s: PcgState = serde_json::from_str(&text).expect("Pcg64 has state and increment");
    [(s.state >> 64) as u64, s.state as u64, (s.increment >> 64) as u64, s.increment as u64]
}

/// Rebuild a stream from [`rng_to_words`].
pub fn rng_from_words(w: [u64; 4]) -> Pcg64 {
    let s = PcgState { state: ((w[0] as u128) << 64) | w[1] as u128, increment: ((w[2] as u128) << 64) | w[3] as u128 };
    serde_json::from_str(&serde_json::to_string(&s).expect("serialises")).expect("valid Pcg64 state")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn state_round_trip_continues_the_stream() {
        let mut a = walker_rng(42, 3);
        for _ in 0..5 {
            a.random::<f64>();
        }
        let mut b = rng_from_words(rng_to_words(&a));
        for _ in 0..10 {
            assert_eq!(a.random::<u64>(), b.random::<u64>());
        }
    }

    #[test]
    fn pick_below_draws_what_rand_random_range_draws() {
        // Small ranges (the sampler's half-ensembles) and large ones, where the
        // second, bias-reducing draw happens about half the time.
        for n in [1u32, 2, 3, 16, 17, 500, 1 << 20, (1 << 31) + 1, u32::MAX - 5, u32::MAX] {
            let (mut a, mut b) = (walker_rng(9, n as usize % 7), walker_rng(9, n as usize % 7));
            for _ in 0..5000 {
                let x = pick_below(&mut a, n);
                assert!(x < n);
                assert_eq!(x as usize, b.random_range(0..n as usize), "n = {n}");
            }
            // Both consumed the same number of draws.
            assert_eq!(a.next_u64(), b.next_u64(), "n = {n}");
        }
    }

    #[test]
    fn streams_differ_by_walker_and_seed() {
        let x = walker_rng(1, 0).random::<u64>();
        assert_ne!(x, walker_rng(1, 1).random::<u64>());
        assert_ne!(x, walker_rng(2, 0).random::<u64>());
    }
}
