//! Weights for an ensemble and the seeded draw of a constrained ensemble.
//!
//! - [`histogram_weights`]: iterative histogram matching as fair-calibrate 1.6 does
//!   it (`calculate_sample_weights`): start from weight 1 for every member that
//!   passed the filters; in each pass, for each target in turn, bin the members'
//!   values, compute the weighted count of each bin, and multiply every member's
//!   weight by `target count / weighted count` of its bin (0 for members outside
//!   the target's range or in a bin the target gives no mass, 1 for an empty bin);
//!   in the last pass the factors of all targets are averaged instead and applied
//!   to the weights of the pass before. Target counts are `reference_count × p_j`
//!   with the bin probabilities `p_j` from the target's CDF (fair-calibrate counts
//!   10⁵ draws from the target; the CDF gives the same without sampling noise).
//! - [`likelihood_weights`]: importance weights `w_i ∝ exp(ln L_i)` of prior draws
//!   (the posterior given the likelihood), scaled so that the largest is 1.
//! - [`kish_ess`] `(Σw)² / Σw²` and [`fair_ess`] `⌊Σ min(w, 1)⌋` (fair-calibrate's
//!   "effective samples", meaningful at its weight scale).
//! - [`draw`]: `M` member indices with probability ∝ weight, with or without
//!   replacement, from a seed; member `i`'s random key depends only on the seed and
//!   `i`, so the draw does not depend on how the ensemble was computed.

use rand_pcg::Pcg64;

use super::constraints::BinnedTarget;
use crate::error::{Error, Result};

/// fair-calibrate's number of target draws per histogram (the weight scale).
pub const FAIR_REFERENCE_COUNT: f64 = 1e5;

/// Histogram matching of members to `targets`.
///
/// `codes[t][i]` is member `i`'s bin code for target `t` ([`BinnedTarget::code`]),
/// `passed[i]` whether it passed the filters (others get weight 0). Returns the
/// weights and the goodness of fit `Σ_j (factor_j − 1)²` of each target after
/// each pass (fair-calibrate's `gofs`).
pub fn histogram_weights(
    targets: &[BinnedTarget],
    codes: &[Vec<u8>],
    passed: &[bool],
    iterations: usize,
    reference_count: f64,
) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
    let n = passed.len();
    if codes.len() != targets.len() || codes.iter().any(|c| c.len() != n) {
        return Err(Error::LengthMismatch {
            what: "bin codes vs members".into(),
            expected: n,
            found: codes.first().map_or(0, Vec::len),
        });
    }
    if iterations == 0 {
        return Err(Error::Config("[ensemble.weighting] iterations must be >= 1".into()));
    }
    let mut w: Vec<f64> = passed.iter().map(|&p| if p { 1.0 } else { 0.0 }).collect();
    if targets.is_empty() {
        return Ok((w, Vec::new()));
    }
    let mut gofs = Vec::with_capacity(iterations);
    let mut before_last = Vec::new();
    let mut avg = vec![0.0; n];
    for k in 0..iterations {
        let last = k + 1 == iterations;
        if last {
            before_last = w.clone();
        }
        let mut gof = Vec::with_capacity(targets.len());
        for (t, c) in targets.iter().zip(codes) {
            let factors = bin_factors(t, c, &w, reference_count);
            gof.push(factors[1..factors.len() - 1].iter().map(|f| (f - 1.0) * (f - 1.0)).sum());
            for i in 0..n {
                let f = factors[c[i] as usize];
                if last {
                    avg[i] += f;
                }
                w[i] *= f;
            }
        }
        gofs.push(gof);
    }
    let nt = targets.len() as f64;
    let out = before_last.iter().zip(&avg).map(|(b, a)| b * (a / nt)).collect();
    Ok((out, gofs))
}

/// fair-calibrate's `get_unique_code_weights`: one factor per bin code
/// (`0`, `1..=bins`, `bins + 1`).
fn bin_factors(t: &BinnedTarget, codes: &[u8], w: &[f64], reference_count: f64) -> Vec<f64> {
    let nb = t.n_bins();
    let mut counts = vec![0.0; nb + 2];
    for (c, wi) in codes.iter().zip(w) {
        counts[*c as usize] += wi;
    }
    let mut f = vec![0.0; nb + 2];
    for j in 1..=nb {
        let target = t.probs[j - 1] * reference_count;
        f[j] = if target == 0.0 {
            0.0
        } else if counts[j] == 0.0 {
            1.0
        } else {
            target / counts[j]
        };
    }
    f
}

/// Importance weights `exp(ln L_i − max ln L)` for members that passed (0 for the
/// others and for members with a non-finite log-likelihood).
pub fn likelihood_weights(ln_like: &[f64], passed: &[bool]) -> Vec<f64> {
    let max = ln_like.iter().zip(passed).filter(|(l, p)| **p && l.is_finite()).map(|(l, _)| *l).fold(f64::NEG_INFINITY, f64::max);
    ln_like.iter().zip(passed).map(|(l, p)| if *p && l.is_finite() { (l - max).exp() } else { 0.0 }).collect()
}

/// Kish's effective sample size `(Σw)² / Σw²` (0 when every weight is 0).
pub fn kish_ess(w: &[f64]) -> f64 {
    let (s, s2) = w.iter().fold((0.0, 0.0), |(a, b), x| (a + x, b + x * x));
    if s2 > 0.0 {
        s * s / s2
    } else {
        0.0
    }
}

/// fair-calibrate's effective samples `⌊Σ min(w_i, 1)⌋` (at its weight scale,
/// [`FAIR_REFERENCE_COUNT`]).
pub fn fair_ess(w: &[f64]) -> f64 {
    w.iter().map(|x| x.min(1.0)).sum::<f64>().floor()
}

/// The 128-bit PCG state for draws with `seed` (distinct from prior draws).
fn draw_state(seed: u64) -> u128 {
    use super::sampling::mix64;
    let hi = mix64(seed ^ 0x4452_4157_4452_4157) as u128; // "DRAWDRAW"
    let lo = mix64(seed.rotate_left(29) ^ 0x7765_6967_6874_7321) as u128;
    (hi << 64) | lo
}

#[inline]
fn open01(rng: &mut Pcg64) -> f64 {
    use rand::RngCore;
    ((rng.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// Draw `m` member indices with probability proportional to `w`, seeded.
///
/// Without replacement: the Efraimidis–Spirakis method: member `i` gets the key
/// `ln(u_i) / w_i` with `u_i` from stream `i` of the seed, and the `m` largest keys
/// win (the same distribution as drawing one at a time, as `numpy`'s
/// `choice(replace=False, p=w)`). With replacement: `m` uniforms (stream `j` for
/// draw `j`), sorted, located in the cumulative weights. Indices are returned in
/// increasing order.
pub fn draw(w: &[f64], m: usize, replace: bool, seed: u64) -> Result<Vec<u64>> {
    if w.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
        return Err(Error::InvalidSampler("draw: weights must be finite and >= 0".into()));
    }
    let positive = w.iter().filter(|x| **x > 0.0).count();
    if positive == 0 {
        return Err(Error::InvalidSampler("draw: every member has weight 0 (no member passed the constraints)".into()));
    }
    let state = draw_state(seed);
    if !replace {
        if m > positive {
            return Err(Error::InvalidSampler(format!(
                "draw: {m} members without replacement, but only {positive} have a weight > 0; draw fewer or set replace = true"
            )));
        }
        // Keep the m largest keys in a min-heap (O(N log m), memory O(m)).
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        #[derive(PartialEq)]
        struct Key(f64, u64);
        impl Eq for Key {}
        impl PartialOrd for Key {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for Key {
            fn cmp(&self, o: &Self) -> std::cmp::Ordering {
                self.0.total_cmp(&o.0).then(self.1.cmp(&o.1))
            }
        }
        let mut heap: BinaryHeap<Reverse<Key>> = BinaryHeap::with_capacity(m + 1);
        for (i, &wi) in w.iter().enumerate() {
            if wi <= 0.0 || m == 0 {
                continue;
            }
            let mut rng = Pcg64::new(state, i as u128);
            let key = open01(&mut rng).ln() / wi;
            if heap.len() < m {
                heap.push(Reverse(Key(key, i as u64)));
            } else if heap.peek().is_some_and(|Reverse(k)| key > k.0) {
                heap.pop();
                heap.push(Reverse(Key(key, i as u64)));
            }
        }
        let mut out: Vec<u64> = heap.into_iter().map(|Reverse(k)| k.1).collect();
        out.sort_unstable();
        Ok(out)
    } else {
        let total: f64 = w.iter().sum();
        let mut u: Vec<f64> = (0..m).map(|j| open01(&mut Pcg64::new(state, j as u128)) * total).collect();
        u.sort_by(f64::total_cmp);
        let mut out = Vec::with_capacity(m);
        let (mut cum, mut i) = (0.0, 0usize);
        for x in u {
            while i < w.len() && (cum + w[i] <= x || w[i] == 0.0) {
                cum += w[i];
                i += 1;
            }
            out.push(i.min(w.len() - 1) as u64);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ensemble::constraints::TargetDistribution;

    #[test]
    fn ess_of_equal_and_degenerate_weights() {
        assert_eq!(kish_ess(&[1.0; 10]), 10.0);
        assert_eq!(kish_ess(&[0.0, 3.0, 0.0]), 1.0);
        assert_eq!(kish_ess(&[0.0; 3]), 0.0);
        // (1+1+2)^2 / (1+1+4) = 16/6
        assert!((kish_ess(&[1.0, 1.0, 2.0]) - 16.0 / 6.0).abs() < 1e-15);
        assert_eq!(fair_ess(&[0.5, 2.0, 0.7]), 2.0);
    }

    #[test]
    fn likelihood_weights_are_exp_of_the_log_likelihood() {
        let ll = [-1.0, -3.0, f64::NEG_INFINITY, -2.0];
        let w = likelihood_weights(&ll, &[true, true, true, false]);
        assert_eq!(w, vec![1.0, (-2.0f64).exp(), 0.0, 0.0]);
    }

    #[test]
    fn draw_is_seeded_and_follows_the_weights() {
        let w: Vec<f64> = (0..1000).map(|i| if i % 10 == 0 { 0.0 } else { 1.0 + (i % 7) as f64 }).collect();
        let a = draw(&w, 200, false, 5).unwrap();
        assert_eq!(a, draw(&w, 200, false, 5).unwrap());
        assert_ne!(a, draw(&w, 200, false, 6).unwrap());
        assert_eq!(a.len(), 200);
        assert!(a.windows(2).all(|p| p[0] < p[1]), "unique, increasing");
        assert!(a.iter().all(|&i| w[i as usize] > 0.0), "weight-0 members are never drawn");
        // With replacement: frequencies ∝ weights. 100 000 draws over weight classes
        // 1..7 (class totals ≈ N w_c / Σw); each count is within 5σ of binomial.
        let m = 100_000;
        let b = draw(&w, m, true, 9).unwrap();
        assert!(b.iter().all(|&i| w[i as usize] > 0.0));
        let total: f64 = w.iter().sum();
        for class in 0..7 {
            let wc: f64 = w.iter().enumerate().filter(|(i, x)| i % 7 == class && **x > 0.0).map(|(_, x)| x).sum();
            let p = wc / total;
            let got = b.iter().filter(|&&i| i as usize % 7 == class).count() as f64;
            let sd = (m as f64 * p * (1.0 - p)).sqrt();
            assert!((got - m as f64 * p).abs() < 5.0 * sd, "class {class}: {got} vs {}", m as f64 * p);
        }
        // Without replacement, heavier members are drawn more often over many seeds.
        let w2 = [1.0, 1.0, 8.0, 1.0];
        let hits = (0..2000).filter(|&s| draw(&w2, 1, false, s).unwrap() == [2]).count();
        // P = 8/11 = 0.727; sd over 2000 = 0.01.
        assert!((hits as f64 / 2000.0 - 8.0 / 11.0).abs() < 0.05, "{hits}");
        assert!(draw(&w2, 5, false, 1).is_err());
        assert!(draw(&[0.0, 0.0], 1, true, 1).is_err());
    }

    #[test]
    fn histogram_matching_recovers_a_target_from_a_wider_prior() {
        // Members uniform on [-4, 4]; target N(1, 0.5). The weighted histogram must
        // reproduce the target bin probabilities (exactly, up to the last pass's
        // averaging, for one target: the factors are 1 after the first pass).
        let n = 20_000;
        let x: Vec<f64> = (0..n).map(|i| -4.0 + 8.0 * (i as f64 + 0.5) / n as f64).collect();
        let t = BinnedTarget::new("x", TargetDistribution::Normal { mean: 1.0, std: 0.5 }, 40, None).unwrap();
        let codes = vec![x.iter().map(|&v| t.code(v)).collect::<Vec<u8>>()];
        let passed = vec![true; n];
        let (w, gofs) = histogram_weights(std::slice::from_ref(&t), &codes, &passed, 5, FAIR_REFERENCE_COUNT).unwrap();
        let total: f64 = w.iter().sum();
        let mut got = vec![0.0; 40];
        for (c, wi) in codes[0].iter().zip(&w) {
            if (1..=40).contains(c) {
                got[*c as usize - 1] += wi / total;
            }
        }
        let mass: f64 = t.probs.iter().sum();
        for (g, p) in got.iter().zip(&t.probs) {
            assert!((g - p / mass).abs() < 1e-12, "{g} vs {}", p / mass);
        }
        assert!(gofs[1][0] < 1e-20, "converged after one pass: {:?}", gofs[1]);
        let mean: f64 = x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() / total;
        assert!((mean - 1.0).abs() < 0.01, "{mean}");
    }
}
