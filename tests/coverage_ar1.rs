//! The machinery of the coverage experiment (`examples/coverage_ar1.rs`,
//! docs/two-layer.md): the AR(1) noise has the variance and lag-1 autocorrelation it
//! is asked for, and on a few replicates the AR(1) fit recovers ρ and gives wider ECS
//! intervals than the independent-error fit. The full 200-replicate experiment is
//! the example's (minutes in release), not CI's.

#[path = "../examples/coverage/experiment.rs"]
#[allow(dead_code)]
mod experiment;

use experiment::{ar1_noise, replicate, summarise, Fit, Mcmc, World};
use rand::SeedableRng;

#[test]
fn ar1_noise_has_the_asked_variance_and_autocorrelation() {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(9);
    let n = 200_000;
    for (rho, sigma) in [(0.0, 1.0), (0.6, 0.087), (0.9, 2.0)] {
        let e = ar1_noise(&mut rng, n, rho, sigma);
        let var = e.iter().map(|x| x * x).sum::<f64>() / n as f64;
        let lag1 = e.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / (n - 1) as f64 / var;
        // Standard errors for n = 2e5: var / σ² ± sqrt(2 (1+ρ²)/(1−ρ²) / n) ≤ 0.014 (ρ = 0.9),
        // lag-1 ± sqrt((1−ρ²)/n) ≤ 0.0023: tolerances are > 4 s.e.
        assert!((var / (sigma * sigma) - 1.0).abs() < 0.06, "rho {rho}: variance ratio {}", var / (sigma * sigma));
        assert!((lag1 - rho).abs() < 0.01, "rho {rho}: lag-1 {lag1}");
    }
    // The same seed gives the same noise.
    let a = ar1_noise(&mut rand_pcg::Pcg64::seed_from_u64(1), 10, 0.5, 1.0);
    assert_eq!(a, ar1_noise(&mut rand_pcg::Pcg64::seed_from_u64(1), 10, 0.5, 1.0));
}

#[test]
fn few_replicates_ar1_recovers_rho_and_widens_ecs() {
    let world = World::mri_like();
    // Short runs (debug build): 24 walkers × 700 steps, 300 discarded.
    let mcmc = Mcmc { n_walkers: 24, n_steps: 700, discard: 300 };
    let fits = [Fit::Independent, Fit::Ar1Sampled];
    let res: Vec<Vec<_>> = (1..=3).map(|seed| replicate(&world, &fits, mcmc, seed).unwrap()).collect();
    let ind: Vec<_> = res.iter().map(|r| &r[0]).collect();
    let ar1: Vec<_> = res.iter().map(|r| &r[1]).collect();
    let (s_ind, s_ar1) = (summarise(&world, Fit::Independent, &ind), summarise(&world, Fit::Ar1Sampled, &ar1));
    // 150 points per series: the posterior median of rho_T is within ±0.25 of 0.6 (its
    // sampling sd with ~150 points is ~0.07, plus the fit's own).
    let rho = s_ar1.rho.unwrap();
    assert!((rho[0] - 0.6).abs() < 0.25 && rho[1] < 0.6, "posterior rho {rho:?}");
    assert!(s_ind.rho.is_none());
    // Correlated noise carries less information than as many independent points: the
    // AR(1) intervals are wider (for ρ = 0.6 about sqrt((1+ρ)/(1−ρ)) = 2 times, in the limit).
    assert!(s_ar1.median_width > 1.3 * s_ind.median_width, "{} vs {}", s_ar1.median_width, s_ind.median_width);
    for r in ind.iter().chain(&ar1) {
        assert!(r.ecs[0] < r.ecs[1] && r.ecs[1] < r.ecs[2] && r.ecs[1] > 2.5 && r.ecs[1] < 5.0, "{:?}", r.ecs);
        assert!(r.acceptance > 0.1, "acceptance {}", r.acceptance);
    }
    // The same seeds give the same fits.
    let again = replicate(&world, &fits, mcmc, 2).unwrap();
    assert_eq!(again[1].ecs, res[1][1].ecs);
}
