//! The stretch move's Metropolis test, `ln u < (n − 1) ln z + ln p(Y) − ln p(X)`,
//! decided from inline logarithms with a proven error bound.
//!
//! On a cheap density the two logarithms per proposal (`ln z`, `ln u`) cost a
//! fifth of the sampler's time as libm calls. [`ln_approx`] is a short inline
//! series whose error is below 1e-12 (proof on the function). The test is taken
//! with those values when the two sides are further apart than a margin of
//! 1e-10 times the magnitudes involved; then the floating-point test with libm's
//! `ln` ([`accept_exact`]) must give the same answer. Otherwise (near-ties, about
//! one proposal in 10¹⁰, and `u = 0`) [`accept_exact`] itself decides. Chains
//! are therefore those of the plain formula, bit for bit; only the route differs.
//! The tests compare both routes on millions of cases, ties placed on purpose
//! included, and the pinned chain fingerprints in `tests/determinism.rs` hold.

/// `√½` as the bits of an `f64`: the reduction below puts the mantissa in `[√½, √2)`.
const SQRT_HALF_BITS: u64 = 0x3FE6_A09E_667F_3BCD;

/// `ln x` for normal positive `x`, within 1e-12 absolute.
///
/// With `x = 2ᵏ m`, `m ∈ [√½, √2)` (exact, by moving bits between exponent and
/// mantissa), `ln x = k ln 2 + 2 atanh s` with `s = (m − 1)/(m + 1)`, `|s| ≤ 0.1716`.
/// The series `2 (s + s³/3 + … + s¹³/13)` leaves out at most
/// `2 |s|¹⁵ / (15 (1 − s²)) < 5e-13`; `m − 1` is exact (Sterbenz), and the
/// rounding of `s`, of the polynomial and of `k ln 2 + p` (|k| ≤ 1022) adds less
/// than 2e-13. The test `ln_approx_error_is_below_its_bound` checks the bound
/// against libm. For zero, subnormal, infinite or NaN `x` the value is
/// meaningless; callers check [`f64::is_normal`].
#[inline(always)]
pub fn ln_approx(x: f64) -> f64 {
    let bits = x.to_bits();
    let k = (bits.wrapping_sub(SQRT_HALF_BITS) as i64) >> 52;
    let m = f64::from_bits(bits.wrapping_sub((k as u64) << 52));
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let p = s2 * (2.0 / 11.0 + s2 * (2.0 / 13.0));
    let p = s2 * (2.0 / 7.0 + s2 * (2.0 / 9.0 + p));
    let p = s * (2.0 + s2 * (2.0 / 3.0 + s2 * (2.0 / 5.0 + p)));
    k as f64 * std::f64::consts::LN_2 + p
}

/// The test as written, with libm's `ln`: accept when
/// `ln u < (n − 1) ln z + ln p(Y) − ln p(X)` (`ndim_m1 = n − 1`). A proposal at
/// −∞ is rejected and `u = 0` accepts any finite step. The reference for [`settle`],
/// and what decides when it cannot.
#[inline(never)]
pub fn accept_exact(ndim_m1: f64, z: f64, u: f64, new_lp: f64, old_lp: f64) -> bool {
    let lnpdiff = ndim_m1 * z.ln() + new_lp - old_lp;
    // ln u < 0 on [0, 1): lnpdiff ≥ 0 accepts whatever u is.
    lnpdiff >= 0.0 || u.ln() < lnpdiff
}

/// The decision of [`accept_exact`] from `ln_z = ln_approx(z)` and
/// `ln_u = ln_approx(u)`, or `None` when they cannot settle it. Without branches
/// (whether a proposal is accepted is a coin toss no branch predictor can learn)
/// and without calls, so a loop over a half-ensemble stays in registers.
///
/// `z` in `[1/a, a]`, `u` in `[0, 1)`, `new_lp` finite or −∞, `old_lp` finite.
#[inline(always)]
pub fn settle(ndim_m1: f64, z: f64, u: f64, ln_z: f64, ln_u: f64, new_lp: f64, old_lp: f64) -> Option<bool> {
    let outside = new_lp == f64::NEG_INFINITY;
    let rhs = ndim_m1 * ln_z + new_lp - old_lp;
    // The exact test compares ln u and rhs computed the same way with libm's ln
    // (within 2⁻⁵² |ln x| of ln x). ln_approx is within 1e-12 of ln x, so the two
    // sides here differ from the exact test's by less than
    //   (1 + ndim_m1)·1e-12 + 2⁻⁵¹ (ndim_m1 |ln z| + |ln u|) + 2⁻⁵¹ (|new_lp| + |old_lp|)
    // (the last term: the two routes round the same additions of ln p). The margin
    // is at least 100 times each term.
    let margin = 1e-10 * (1.0 + ndim_m1 * (1.0 + ln_z.abs()) + ln_u.abs()) + 1e-13 * (new_lp.abs() + old_lp.abs());
    let below = ln_u < rhs - margin;
    let above = ln_u >= rhs + margin;
    let settled = outside | ((below | above) & z.is_normal() & u.is_normal());
    settled.then_some(below & !outside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_pcg::Pcg64;

    #[test]
    fn ln_approx_error_is_below_its_bound() {
        let mut rng = Pcg64::seed_from_u64(1);
        let mut xs: Vec<f64> = vec![
            1.0,
            0.5,
            2.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            2f64.powi(-53),
            1.0 - f64::EPSILON / 2.0,
            1.0 + f64::EPSILON,
            std::f64::consts::FRAC_1_SQRT_2,
            std::f64::consts::SQRT_2,
            f64::from_bits(SQRT_HALF_BITS - 1),
        ];
        xs.extend((0..500_000).map(|_| 2f64.powf(rng.random_range(-1021.0..1023.0))));
        xs.extend((0..500_000).map(|_| rng.random_range(0.25..4.0)));
        xs.extend((0..500_000).map(|_| rng.random::<f64>().max(f64::MIN_POSITIVE)));
        let mut worst = 0.0f64;
        for x in xs {
            let err = (ln_approx(x) - x.ln()).abs();
            assert!(err < 1e-12, "x = {x:e}: ln_approx {} vs ln {}", ln_approx(x), x.ln());
            worst = worst.max(err);
        }
        // The bound is not vacuous: the series is truncated, so the error is not 0.
        assert!(worst > 0.0);
    }

    fn settled(ndim_m1: f64, z: f64, u: f64, new_lp: f64, old_lp: f64) -> bool {
        settle(ndim_m1, z, u, ln_approx(z), ln_approx(u), new_lp, old_lp).is_some()
    }

    /// The sampler's route: [`settle`], or [`accept_exact`] when it cannot; checked
    /// against [`accept_exact`] alone.
    fn both(ndim_m1: f64, z: f64, u: f64, new_lp: f64, old_lp: f64) -> bool {
        let fast = settle(ndim_m1, z, u, ln_approx(z), ln_approx(u), new_lp, old_lp)
            .unwrap_or_else(|| accept_exact(ndim_m1, z, u, new_lp, old_lp));
        assert_eq!(
            fast,
            accept_exact(ndim_m1, z, u, new_lp, old_lp),
            "ndim_m1 {ndim_m1} z {z:e} u {u:e} new {new_lp:e} old {old_lp:e}"
        );
        fast
    }

    #[test]
    fn follows_the_formula_at_the_edges() {
        assert!(both(9.0, 1.0, 0.5, -1.0, -1.5)); // Δ = 0.5 ≥ 0
        assert!(both(9.0, 1.0, 0.5, -1.0, -1.0 + 0.6)); // ln 0.5 = -0.693 < -0.6
        assert!(!both(9.0, 1.0, 0.5, -1.0, -1.0 + 0.7)); // -0.693 > -0.7
        assert!(both(9.0, 2.0, 0.99, -10.0, -10.0 + 9.0 * 2f64.ln() - 1e-9)); // z favours Y
        assert!(!both(9.0, 1.0, 0.0, f64::NEG_INFINITY, 0.0)); // outside the support
        assert!(!both(9.0, 1.3, 0.4, f64::NEG_INFINITY, -3.0));
        assert!(both(9.0, 1.0, 0.0, -700.0, 0.0)); // u = 0 takes any finite step
        assert!(!both(0.0, 0.5, 0.3, 0.3f64.ln(), 0.0)); // equality rejects
    }

    /// Cases as the sampler makes them: z from the stretch distribution, u
    /// uniform, log-densities over many scales, differences near zero.
    #[test]
    fn same_decision_as_the_exact_test() {
        let mut rng = Pcg64::seed_from_u64(2);
        let (n, mut n_settled) = (2_000_000, 0);
        for i in 0..n {
            let a: f64 = [2.0, 1.5, 3.0, 1.0001][i % 4];
            let w = (a - 1.0) * rng.random::<f64>() + 1.0;
            let z = w * w / a;
            let u: f64 = if i % 1000 == 0 { 0.0 } else { rng.random() };
            let ndim_m1 = [0.0, 1.0, 9.0, 99.0, 1999.0][i % 5];
            let scale = 10f64.powi(rng.random_range(-3..12));
            let old_lp = -scale * rng.random::<f64>();
            let diff = match i % 3 {
                0 => rng.random_range(-20.0..5.0),
                1 => rng.random_range(-1e-9..1e-9),
                _ => -scale * rng.random_range(-1.0..1.0),
            };
            both(ndim_m1, z, u, old_lp + diff, old_lp);
            n_settled += settled(ndim_m1, z, u, old_lp + diff, old_lp) as usize;
        }
        // The fast route is the one taken: only u = 0 (1 in 1000 here) and the
        // rare near-ties go to libm.
        assert!(n_settled as f64 > 0.998 * n as f64, "settled {n_settled} of {n}");
    }

    /// Cases placed on the boundary (the two sides a few ulps apart), where only
    /// the exact test can decide.
    #[test]
    fn boundary_cases_agree_with_the_exact_test() {
        let mut rng = Pcg64::seed_from_u64(3);
        for i in 0..1_000_000 {
            let w = rng.random::<f64>() + 1.0;
            let z = w * w / 2.0;
            let u: f64 = rng.random::<f64>().max(1e-300);
            let old_lp = -rng.random_range(0.0..1e3);
            let target = u.ln() - 9.0 * z.ln() + old_lp;
            let new_lp = target + ((i % 9) as f64 - 4.0) * 1e-15 * (1.0 + target.abs());
            both(9.0, z, u, new_lp, old_lp);
            // A tie within a few ulps is never settled from the approximations.
            assert!(!settled(9.0, z, u, new_lp, old_lp) || (i % 9) != 4);
        }
    }
}
