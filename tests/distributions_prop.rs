//! Property tests of the priors and transforms (proptest, fixed seed): for random
//! valid parameters every distribution's density is normalised, equals statrs' on
//! its support, and its samples stay in bounds with the right mean and variance;
//! transforms round-trip; the stretch move's z stays in [1/a, a].

use std::sync::Arc;

use climcal::distribution::{Bound, Distribution, LogNormal, Normal, TruncatedNormal, Uniform};
use climcal::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use rand::SeedableRng;
use rand_pcg::Pcg64;
use statrs::distribution::{Continuous, ContinuousCDF};

fn config(cases: u32) -> ProptestConfig {
    // Fixed seed: the same cases every run (the statistical checks are then
    // deterministic); regressions are still recorded in proptest-regressions/.
    ProptestConfig { cases, rng_seed: RngSeed::Fixed(0x5eed_c11c), ..ProptestConfig::default() }
}

/// Composite Simpson's rule of `f` on `[a, b]` with `n` (even) intervals.
fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    let h = (b - a) / n as f64;
    let mut s = f(a) + f(b);
    for i in 1..n {
        s += f(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0
}

/// ∫ g(x) p(x) dx over the support of `d`, numerically. Infinite ends are cut at
/// `centre ± 14·scale` (the mass beyond 14σ of a normal is ~1e-44). For a positive
/// support starting at 0 (log-normal) the integral is taken over u = ln x.
fn expect(d: &dyn Distribution, g: impl Fn(f64) -> f64, centre: f64, scale: f64, log_space: bool) -> f64 {
    let n = 20_000;
    if log_space {
        return simpson(
            |u| {
                let x = u.exp();
                g(x) * d.ln_pdf(x).exp() * x
            },
            centre - 14.0 * scale,
            centre + 14.0 * scale,
            n,
        );
    }
    let (lo, hi) = d.bounds();
    let a = lo.max(centre - 14.0 * scale);
    let b = hi.min(centre + 14.0 * scale);
    simpson(|x| g(x) * d.ln_pdf(x).exp(), a, b, n)
}

struct Moments {
    mean: f64,
    var: f64,
    m4: f64,
}

fn numeric_moments(d: &dyn Distribution, centre: f64, scale: f64, log_space: bool) -> (f64, Moments) {
    let mass = expect(d, |_| 1.0, centre, scale, log_space);
    let mean = expect(d, |x| x, centre, scale, log_space);
    let var = expect(d, |x| (x - mean).powi(2), centre, scale, log_space);
    let m4 = expect(d, |x| (x - mean).powi(4), centre, scale, log_space);
    (mass, Moments { mean, var, m4 })
}

/// Samples stay in bounds; their mean and variance agree with the true moments
/// within 5 standard errors: se(mean) = √(var/n), se(var) = √((μ₄ − var²)/n)
/// (5σ: a false alarm has probability ~6e-7 per check).
fn check_samples(d: &dyn Distribution, m: &Moments, n: usize, seed: u64) -> std::result::Result<(), TestCaseError> {
    let mut rng = Pcg64::seed_from_u64(seed);
    let x = d.sample(n, &mut rng);
    prop_assert_eq!(x.len(), n);
    let (lo, hi) = d.bounds();
    for &v in &x {
        prop_assert!(v >= lo && v <= hi && v.is_finite(), "sample {} outside [{}, {}]", v, lo, hi);
    }
    let nf = n as f64;
    let mean = x.iter().sum::<f64>() / nf;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (nf - 1.0);
    let se_mean = (m.var / nf).sqrt();
    let se_var = ((m.m4 - m.var * m.var).max(0.0) / nf).sqrt();
    prop_assert!((mean - m.mean).abs() < 5.0 * se_mean, "mean {} vs {} (5 se = {})", mean, m.mean, 5.0 * se_mean);
    prop_assert!((var - m.var).abs() < 5.0 * se_var + 1e-12, "var {} vs {} (5 se = {})", var, m.var, 5.0 * se_var);
    Ok(())
}

fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-300)
}

// Standard normal pdf/cdf for the analytic truncated-normal moments.
fn phi(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

proptest! {
    #![proptest_config(config(32))]

    #[test]
    fn uniform(lower in -100.0f64..100.0, width in 1e-3f64..50.0, seed in any::<u64>()) {
        let upper = lower + width;
        let d = Uniform::new(lower, upper).unwrap();
        let s = statrs::distribution::Uniform::new(lower, upper).unwrap();
        for t in [0.0, 0.1, 0.5, 0.93, 1.0] {
            let x = lower + t * width;
            prop_assert!(rel_close(d.ln_pdf(x), s.ln_pdf(x), 1e-12));
        }
        prop_assert_eq!(d.ln_pdf(lower - 1e-9 * width.max(1.0) - 1e-9), f64::NEG_INFINITY);
        prop_assert_eq!(d.ln_pdf(upper + 1e-9 * width.max(1.0) + 1e-9), f64::NEG_INFINITY);
        let (mass, m) = numeric_moments(&d, lower + width / 2.0, width, false);
        prop_assert!((mass - 1.0).abs() < 1e-9, "mass {}", mass);
        prop_assert!(rel_close(m.mean.abs().max(1e-300), (lower + width / 2.0).abs().max(1e-300), 1e-7) || (m.mean - (lower + width / 2.0)).abs() < 1e-9 * width);
        prop_assert!(rel_close(m.var, width * width / 12.0, 1e-7));
        check_samples(&d, &m, 20_000, seed)?;
    }

    #[test]
    fn normal(mean in -50.0f64..50.0, sd in 1e-2f64..20.0, seed in any::<u64>()) {
        let d = Normal::new(mean, sd).unwrap();
        let s = statrs::distribution::Normal::new(mean, sd).unwrap();
        for t in [-8.0, -1.3, 0.0, 0.7, 5.0] {
            let x = mean + t * sd;
            prop_assert!(rel_close(d.ln_pdf(x), s.ln_pdf(x), 1e-12));
            prop_assert!(rel_close(d.cdf(x), s.cdf(x), 1e-12));
        }
        let (mass, m) = numeric_moments(&d, mean, sd, false);
        prop_assert!((mass - 1.0).abs() < 1e-9, "mass {}", mass);
        prop_assert!((m.mean - mean).abs() < 1e-8 * sd);
        prop_assert!(rel_close(m.var, sd * sd, 1e-8));
        check_samples(&d, &m, 20_000, seed)?;
    }

    #[test]
    fn log_normal(mu in -3.0f64..3.0, sigma in 0.05f64..0.6, seed in any::<u64>()) {
        let d = LogNormal::new(mu, sigma).unwrap();
        let s = statrs::distribution::LogNormal::new(mu, sigma).unwrap();
        for t in [-4.0, -1.0, 0.0, 0.5, 3.0] {
            let x = (mu + t * sigma).exp();
            prop_assert!(rel_close(d.ln_pdf(x), s.ln_pdf(x), 1e-12));
        }
        prop_assert_eq!(d.ln_pdf(0.0), f64::NEG_INFINITY);
        prop_assert_eq!(d.ln_pdf(-1.0), f64::NEG_INFINITY);
        let (mass, m) = numeric_moments(&d, mu, sigma, true);
        prop_assert!((mass - 1.0).abs() < 1e-9, "mass {}", mass);
        let s2 = sigma * sigma;
        prop_assert!(rel_close(m.mean, (mu + s2 / 2.0).exp(), 1e-8));
        prop_assert!(rel_close(m.var, (s2.exp() - 1.0) * (2.0 * mu + s2).exp(), 1e-7));
        check_samples(&d, &m, 20_000, seed)?;
    }

    #[test]
    fn truncated_normal(mean in -10.0f64..10.0, sd in 0.05f64..5.0, a in -4.0f64..3.0, width in 0.05f64..6.0, seed in any::<u64>()) {
        // limits at mean + a·sd and mean + (a + width)·sd: covers the rejection path
        // (mass > 0.25) and the inverse-CDF path (small mass, far tails)
        let (lower, upper) = (mean + a * sd, mean + (a + width) * sd);
        let d = TruncatedNormal::new(mean, sd, lower, upper).unwrap();
        let s = statrs::distribution::Normal::new(mean, sd).unwrap();
        let z = s.cdf(upper) - s.cdf(lower);
        let z = if z > 1e-3 { z } else { s.sf(lower) - s.sf(upper) };
        for t in [0.0, 0.2, 0.5, 0.9, 1.0] {
            let x = lower + t * (upper - lower);
            prop_assert!(rel_close(d.ln_pdf(x), s.ln_pdf(x) - z.ln(), 1e-9));
        }
        prop_assert_eq!(d.ln_pdf(lower - 1e-6 * sd), f64::NEG_INFINITY);
        let (mass, m) = numeric_moments(&d, mean, sd, false);
        prop_assert!((mass - 1.0).abs() < 1e-8, "mass {}", mass);
        // analytic moments with α = a, β = a + width
        let (al, be) = (a, a + width);
        let dphi = (phi(al) - phi(be)) / z;
        let mean_a = mean + sd * dphi;
        let var_a = sd * sd * (1.0 + (al * phi(al) - be * phi(be)) / z - dphi * dphi);
        prop_assert!((m.mean - mean_a).abs() < 1e-6 * sd, "{} vs {}", m.mean, mean_a);
        prop_assert!(rel_close(m.var, var_a, 1e-5), "{} vs {}", m.var, var_a);
        check_samples(&d, &m, 20_000, seed)?;
    }
}

proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn bound_of_normal_and_lognormal(mean in -5.0f64..5.0, sd in 0.1f64..3.0, a in -3.0f64..2.0, width in 0.2f64..4.0, seed in any::<u64>()) {
        let (lower, upper) = (mean + a * sd, mean + (a + width) * sd);
        let d = Bound::new(Normal::new(mean, sd).unwrap(), lower, upper).unwrap();
        let s = statrs::distribution::Normal::new(mean, sd).unwrap();
        let z = s.cdf(upper) - s.cdf(lower);
        for t in [0.0, 0.3, 1.0] {
            let x = lower + t * (upper - lower);
            prop_assert!(rel_close(d.ln_pdf(x), s.ln_pdf(x) - z.ln(), 1e-9));
        }
        prop_assert_eq!(d.ln_pdf(upper + 1e-6 * sd), f64::NEG_INFINITY);
        let (mass, m) = numeric_moments(&d, mean, sd, false);
        prop_assert!((mass - 1.0).abs() < 1e-8, "mass {}", mass);
        // Moments of Bound<Normal> are those of the truncated normal (analytic).
        let (al, be) = (a, a + width);
        let dphi = (phi(al) - phi(be)) / z;
        prop_assert!((m.mean - (mean + sd * dphi)).abs() < 1e-6 * sd);
        check_samples(&d, &m, 4_000, seed)?;

        // Bound of a log-normal to [q_lo, q_hi]: only numerically integrated moments exist.
        let ln = LogNormal::new(mean / 5.0, 0.5).unwrap();
        let (bl, bu) = ((mean / 5.0 + a * 0.5).exp(), (mean / 5.0 + (a + width) * 0.5).exp());
        let d = Bound::new(ln, bl, bu).unwrap();
        prop_assert_eq!(d.bounds(), (bl, bu));
        let n = 40_000;
        let mass = simpson(|x| d.ln_pdf(x).exp(), bl, bu, n);
        prop_assert!((mass - 1.0).abs() < 1e-6, "mass {}", mass);
        let mean_n = simpson(|x| x * d.ln_pdf(x).exp(), bl, bu, n);
        let var_n = simpson(|x| (x - mean_n).powi(2) * d.ln_pdf(x).exp(), bl, bu, n);
        let m4_n = simpson(|x| (x - mean_n).powi(4) * d.ln_pdf(x).exp(), bl, bu, n);
        check_samples(&d, &Moments { mean: mean_n, var: var_n, m4: m4_n }, 4_000, seed ^ 1)?;
    }

    #[test]
    fn transforms_round_trip(x_pos in 1e-6f64..1e6, t in 0.0001f64..0.9999, lower in -10.0f64..10.0, width in 0.01f64..100.0) {
        let upper = lower + width;
        let p = ParameterSet::new()
            .add_with("k", Arc::new(LogNormal::new(0.0, 1.0).unwrap()), Transform::Log, "").unwrap()
            .add_with("f", Arc::new(Uniform::new(lower, upper).unwrap()), Transform::Logit, "").unwrap()
            .add_with("n", Arc::new(Normal::new(0.0, 1.0).unwrap()), Transform::Identity, "").unwrap();
        let x = [x_pos, lower + t * width, -3.7];
        let mut u = [0.0; 3];
        let mut back = [0.0; 3];
        p.to_sampler(&x, &mut u);
        p.to_physical(&u, &mut back);
        prop_assert!(rel_close(back[0], x[0], 1e-12));
        prop_assert!((back[1] - x[1]).abs() <= 1e-9 * width);
        prop_assert_eq!(back[2], x[2]);
        // The sampler-space log-prior is the physical one plus ln|dx/du|.
        let jac = x_pos.ln() + ((x[1] - lower) * (upper - x[1]) / width).ln();
        let want = p.ln_prior(&back) + jac;
        prop_assert!((p.ln_prior_sampler(&u) - want).abs() < 1e-8 * want.abs().max(1.0));
    }

    /// Every proposal of the stretch move is Y = X_j + z (X_k − X_j) with z in [1/a, a]
    /// for a walker j of the complementary half. 1-D, 4 walkers, flat density (every
    /// proposal accepted, so the stored rows are the proposals).
    #[test]
    fn stretch_z_stays_in_range(a in 1.05f64..6.0, seed in any::<u64>()) {
        let d = FnDensity::new(1, |_x: &[f64]| 0.0);
        let s = EnsembleSampler::new(d, seed).with_n_walkers(4).unwrap().with_stretch_scale(a).unwrap().serial();
        let mut st = s.initialize_without_prior(InitMethod::Explicit(vec![-1.5, -0.2, 0.4, 2.0])).unwrap();
        let mut prev = st.positions.clone();
        let chain = s.run(&mut st, 30, &RunOptions::default()).unwrap();
        prop_assert_eq!(chain.accepted(), &[30, 30, 30, 30][..]);
        let rows = chain.samples();
        for t in 0..30 {
            let y: Vec<f64> = (0..4).map(|k| rows[[t, k, 0]]).collect();
            // first half (0, 1) moves against (2, 3) at the old positions; then
            // (2, 3) against the new (0, 1)
            let halves = [([0usize, 1], [prev[2], prev[3]]), ([2, 3], [y[0], y[1]])];
            for (active, comp) in halves {
                for k in active {
                    let ok = comp.iter().any(|&xj| {
                        let z = (y[k] - xj) / (prev[k] - xj);
                        z >= 1.0 / a * (1.0 - 1e-9) && z <= a * (1.0 + 1e-9)
                    });
                    prop_assert!(ok, "step {}, walker {}: no z in [1/a, a] explains {} from {}", t, k, y[k], prev[k]);
                }
            }
            prev = y;
        }
    }
}
