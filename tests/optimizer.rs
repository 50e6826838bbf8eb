//! Point estimation: every method on standard problems, bounds, failures,
//! a synthetic calibration, determinism across thread counts.
//!
//! Seeds are fixed; each tolerance says where it comes from. The problems are
//! cheap closures, so every test runs in well under a second in debug builds
//! except where noted.

use std::sync::Arc;

use climcal::executor::{Executor, RayonExecutor, SerialExecutor};
use climcal::optimizer::{Objective, OptimizeMethod, OptimizeOptions, PointEstimateResult, PointEstimator};
use climcal::prelude::*;
use rand::SeedableRng;
use rand_distr::{Distribution as _, StandardNormal};

fn rosenbrock(x: &[f64]) -> f64 {
    x.windows(2).map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2)).sum()
}

fn rosen_estimator(dim: usize) -> PointEstimator {
    PointEstimator::new(FnDensity::new(dim, |x: &[f64]| -rosenbrock(x)))
        .with_start_box(vec![-2.0; dim], vec![2.0; dim])
        .unwrap()
        .with_executor(Arc::new(SerialExecutor))
}

/// Shifted, anisotropic 10-D quadratic: cost Σ w_i (x_i − c_i)², c_i = 0.3 i − 1, w_i = 1 + i.
fn quad_centre() -> Vec<f64> {
    (0..10).map(|i| 0.3 * i as f64 - 1.0).collect()
}

fn quad_estimator() -> PointEstimator {
    let c = quad_centre();
    PointEstimator::new(FnDensity::new(10, move |x: &[f64]| {
        -x.iter().zip(&c).enumerate().map(|(i, (xi, ci))| (1.0 + i as f64) * (xi - ci).powi(2)).sum::<f64>()
    }))
    .with_start_box(vec![-5.0; 10], vec![5.0; 10])
    .unwrap()
    .with_executor(Arc::new(SerialExecutor))
}

fn max_abs_err(res: &PointEstimateResult, truth: &[f64]) -> f64 {
    res.best_physical().iter().zip(truth).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
}

fn opts(seed: u64) -> OptimizeOptions {
    OptimizeOptions { seed, ..Default::default() }
}

fn report(label: &str, res: &PointEstimateResult, truth: &[f64]) -> f64 {
    let e = max_abs_err(res, truth);
    eprintln!("{label}: max|x-x*| = {e:.3e}, cost = {:.3e}, evals = {}", -res.best_ln_objective, res.n_evals);
    e
}

const ALL: [OptimizeMethod; 4] = [
    OptimizeMethod::LBFGS,
    OptimizeMethod::NelderMead,
    OptimizeMethod::ParticleSwarm,
    OptimizeMethod::RandomSearch { n_samples: 20_000 },
];

/// Tolerance on max |x − x*| per method and problem.
///
/// - L-BFGS stops at gradient norm < 1e-6; near the minimum |x − x*| ≈ |g|/λ_min
///   with λ_min ≈ 0.1–2 on these problems, so ~1e-5; we allow 1e-4 for
///   finite-difference gradient error.
/// - Nelder–Mead stops when the sd of the simplex costs is < 1e-6, i.e. the cost
///   is ~1e-6 above the minimum; on Rosenbrock's valley floor that allows
///   |x − x*| ≈ 1e-3 (measured 6e-4), so 5e-3.
/// - Particle swarm stops after 50 iterations without improvement of 1e-6; cost
///   ~1e-5 above the minimum, |x − x*| ≲ 1e-2 on Rosenbrock-5D (measured 4e-3): 2e-2.
/// - Random search (4 × 20 000 draws in [-2, 2]²): the set {cost < 1e-3} around
///   Rosenbrock's minimum covers ~2e-4 of the box, so P(no draw in it) ≈
///   exp(−80 000 · 2e-4) ≈ 1e-7 and |x − x*| < 0.1 along the valley.
///   In 5-D and 10-D random search cannot get close in 80 000 draws (the cost
///   sublevel sets are ~1e-9 of the box): see `random_search_is_a_screen`.
fn tolerance(m: OptimizeMethod, problem: &str) -> f64 {
    match (m, problem) {
        (OptimizeMethod::LBFGS, _) => 1e-4,
        (OptimizeMethod::NelderMead, "quad10") => 2e-3, // 10-D simplex, measured 5e-4
        (OptimizeMethod::NelderMead, _) => 5e-3,
        (OptimizeMethod::ParticleSwarm, _) => 2e-2,
        (OptimizeMethod::RandomSearch { .. }, "rosen2") => 0.1,
        _ => f64::INFINITY,
    }
}

#[test]
fn every_method_finds_rosenbrock_2d() {
    let est = rosen_estimator(2);
    for m in ALL {
        let r = est.optimize(m, &opts(1)).unwrap();
        let e = report(&format!("rosen2 {}", m.name()), &r, &[1.0; 2]);
        assert!(e < tolerance(m, "rosen2"), "{}: error {e:.3e}\n{}", m.name(), r.summary());
        assert_eq!(r.n_evals as usize, r.ln_objective.len());
        assert_eq!(r.samples.nrows(), r.ln_objective.len());
    }
}

#[test]
fn gradient_and_simplex_methods_find_rosenbrock_5d() {
    let est = rosen_estimator(5);
    for m in [OptimizeMethod::LBFGS, OptimizeMethod::NelderMead] {
        let r = est.optimize(m, &opts(2)).unwrap();
        let e = report(&format!("rosen5 {}", m.name()), &r, &[1.0; 5]);
        assert!(e < tolerance(m, "rosen5"), "{}: error {e:.3e}\n{}", m.name(), r.summary());
    }
}

/// Particle swarm on Rosenbrock-5D takes ~270 000 evaluations (~3 s in debug).
#[test]
fn particle_swarm_finds_rosenbrock_5d() {
    let r = rosen_estimator(5).optimize(OptimizeMethod::ParticleSwarm, &opts(2)).unwrap();
    let e = report("rosen5 pso", &r, &[1.0; 5]);
    assert!(e < tolerance(OptimizeMethod::ParticleSwarm, "rosen5"), "error {e:.3e}\n{}", r.summary());
}

#[test]
fn every_method_but_random_finds_the_shifted_quadratic_10d() {
    let est = quad_estimator();
    for m in [OptimizeMethod::LBFGS, OptimizeMethod::NelderMead, OptimizeMethod::ParticleSwarm] {
        let r = est.optimize(m, &opts(3)).unwrap();
        let e = report(&format!("quad10 {}", m.name()), &r, &quad_centre());
        assert!(e < tolerance(m, "quad10"), "{}: error {e:.3e}\n{}", m.name(), r.summary());
    }
}

#[test]
fn random_search_is_a_screen() {
    // In 10-D, 4 × 20 000 uniform draws in [-5, 5]^10 cannot reach the minimum;
    // what random search promises is the best of its draws, all kept.
    let r = quad_estimator().optimize(OptimizeMethod::RandomSearch { n_samples: 20_000 }, &opts(3)).unwrap();
    assert_eq!(r.n_evals, 80_000);
    let best = r.ln_objective.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(best, r.best_ln_objective);
    // Every draw lies in the box.
    assert!(r.samples.iter().all(|v| (-5.0..=5.0).contains(v)));
    // The mean cost of a uniform draw is Σ w_i (25/3 + c_i²) ≈ 500 and the best of
    // 80 000 was 42–48 per restart for seed 1; 100 catches draws that stop
    // covering the box.
    assert!(-r.best_ln_objective < 100.0, "{}", r.summary());
}

/// `y(t) = a·t + b` on t = 0..9 with a ~ U(0, 1) (logit) and b ~ N(0, 10); data
/// made with a = 1.3 (outside the prior) and b = 0.2, σ = 0.1. The constrained
/// optimum has a on its upper bound 1.
fn bounded_posterior() -> Posterior {
    let params = ParameterSet::new()
        .add_with("a", Arc::new(Uniform::new(0.0, 1.0).unwrap()), Transform::Logit, "")
        .unwrap()
        .add("b", Normal::new(0.0, 10.0).unwrap())
        .unwrap();
    let times: Vec<f64> = (0..10).map(|t| t as f64).collect();
    let obs: Vec<f64> = times.iter().map(|t| 1.3 * t + 0.2).collect();
    let target = Target::new().add_variable("y", times.clone(), obs, vec![0.1; 10]).unwrap();
    let t2 = times.clone();
    let runner = ClosureRunner::positional(&["a", "b"], &["y"], move |p: &[f64]| {
        ModelOutput::new(t2.clone(), vec![("y".into(), t2.iter().map(|t| p[0] * t + p[1]).collect())])
    });
    Posterior::new(params, target, Arc::new(runner), Arc::new(GaussianLikelihood::default())).unwrap()
}

#[test]
fn optimum_on_a_bound_is_reached_without_leaving_the_support() {
    let est =
        PointEstimator::from_posterior(bounded_posterior(), Objective::MaxPosterior).with_executor(Arc::new(SerialExecutor));
    // With a = 1 fixed, the best b is the least-squares intercept of y − t:
    // b* = mean(0.3 t + 0.2) = 0.3·4.5 + 0.2 = 1.55 (the N(0, 10) prior moves it by
    // σ²/(n·100) relative, < 1e-4).
    for m in ALL {
        let r = est.optimize(m, &opts(4)).unwrap();
        let a = r.best_params["a"];
        let b = r.best_params["b"];
        eprintln!("bound {}: a = {a:.8}, b = {b:.6}", m.name());
        // Every evaluated point respects the bounds.
        assert!(r.samples.column(0).iter().all(|&v| (0.0..=1.0).contains(&v)));
        // Tolerances: a cost change of δ moves a by δ/|∂cost/∂a| where
        // ∂cost/∂a = Σ t(a t + b − y)/σ² ≈ 2e3 at the bound, so the gradient
        // methods reach 1 − a < 1e-6; particle swarm's box is ±5 prior sd of
        // logit(a) ≈ ±9, so a ≥ σ(9) − ε ≈ 0.9999; random search: 0.01.
        let (ta, tb) = match m {
            OptimizeMethod::LBFGS | OptimizeMethod::NelderMead => (1e-4, 1e-2),
            OptimizeMethod::ParticleSwarm => (1e-3, 0.05),
            OptimizeMethod::RandomSearch { .. } => (0.01, 0.2),
        };
        assert!(a <= 1.0 && 1.0 - a < ta, "{}: a = {a}\n{}", m.name(), r.summary());
        assert!((b - 1.55).abs() < tb, "{}: b = {b}\n{}", m.name(), r.summary());
        assert!(r.best_ln_posterior.is_finite() && r.best_likelihood.is_finite());
    }
}

#[test]
fn map_and_mle_differ_as_the_prior_says() {
    // One parameter with a tight N(0, 0.1) prior and data y = 1 ± 0.1 (10 points):
    // MLE = 1; MAP = precision-weighted mean = (1·1000) / (1000 + 100) = 0.90909…
    let params = ParameterSet::new().add("m", Normal::new(0.0, 0.1).unwrap()).unwrap();
    let times: Vec<f64> = (0..10).map(|t| t as f64).collect();
    let target = Target::new().add_variable("y", times.clone(), vec![1.0; 10], vec![0.1; 10]).unwrap();
    let runner = ClosureRunner::positional(&["m"], &["y"], move |p: &[f64]| {
        ModelOutput::new(times.clone(), vec![("y".into(), vec![p[0]; 10])])
    });
    let post = Posterior::new(params, target, Arc::new(runner), Arc::new(GaussianLikelihood::default())).unwrap();
    let o = OptimizeOptions { n_restarts: 2, seed: 5, ..Default::default() };
    let map = PointEstimator::from_posterior(post.clone(), Objective::MaxPosterior).optimize(OptimizeMethod::LBFGS, &o).unwrap();
    let mle = PointEstimator::from_posterior(post, Objective::MaxLikelihood).optimize(OptimizeMethod::LBFGS, &o).unwrap();
    // Gradient tolerance 1e-6 over curvature 1100 (MAP) or 1000 (MLE) → ~1e-9; 1e-6 allows for FD error.
    assert!((map.best_params["m"] - 1000.0 / 1100.0).abs() < 1e-6, "{}", map.summary());
    assert!((mle.best_params["m"] - 1.0).abs() < 1e-6, "{}", mle.summary());
    // The split: posterior = likelihood + prior, at the best point and per sample.
    for r in [&map, &mle] {
        assert!((r.best_ln_posterior - (r.best_likelihood + r.best_ln_prior)).abs() < 1e-9);
    }
    assert!(mle.best_likelihood > map.best_likelihood);
    assert!(map.best_ln_posterior > mle.best_ln_posterior);
    // Per sample: ln L = ln post − ln p(m) exactly (MAP run), and ln L = objective (MLE run).
    let prior = Normal::new(0.0, 0.1).unwrap();
    for ((v, l), m) in map.ln_objective.iter().zip(&map.likelihoods).zip(map.samples.column(0)) {
        assert!((l - (v - prior.ln_pdf(*m))).abs() < 1e-9 * (1.0 + v.abs()));
    }
    assert_eq!(mle.ln_objective, mle.likelihoods);
}

#[test]
fn failed_model_runs_do_not_abort_the_optimiser() {
    // The model fails (NaN) for x0 > 1.5 and returns +inf (also a failure) for
    // x1 < -1.0 (panics are caught the same way, see the executor's tests), away from the
    // minimum (1, 0.3) of (x0 − 1)² + (x1 − 0.3)²: every method must still find it,
    // within the tolerances of the quadratic tests.
    let d = FnDensity::new(2, |x: &[f64]| {
        if x[0] > 1.5 {
            f64::NAN
        } else if x[1] < -1.0 {
            f64::INFINITY
        } else {
            -((x[0] - 1.0).powi(2) + (x[1] - 0.3).powi(2))
        }
    });
    let est = PointEstimator::new(d).with_start_box(vec![-2.0; 2], vec![2.0; 2]).unwrap().with_executor(Arc::new(SerialExecutor));
    for m in [OptimizeMethod::LBFGS, OptimizeMethod::NelderMead, OptimizeMethod::ParticleSwarm] {
        let r = est.optimize(m, &opts(6)).unwrap();
        let e = report(&format!("failures {}", m.name()), &r, &[1.0, 0.3]);
        assert!(r.failures > 0, "{}: the starts and swarm must have hit the failing regions", m.name());
        assert!(e < tolerance(m, "quad10"), "{}: error {e:.3e}\n{}", m.name(), r.summary());
    }
}

#[test]
fn an_optimum_on_a_failure_edge_is_approached_from_the_working_side() {
    // Failing for x0 > 0.5: the best working point is (0.5, 0.3), cost 0.25.
    // Unconstrained methods zig-zag along such a wall (L-BFGS's line searches keep
    // hitting it), so only feasibility and a cost within 0.05 of 0.25 are promised
    // (measured: L-BFGS 0.277, Nelder–Mead and particle swarm < 0.2501).
    let d = FnDensity::new(2, |x: &[f64]| if x[0] > 0.5 { f64::NAN } else { -((x[0] - 1.0).powi(2) + (x[1] - 0.3).powi(2)) });
    let est = PointEstimator::new(d).with_start_box(vec![-2.0; 2], vec![2.0; 2]).unwrap().with_executor(Arc::new(SerialExecutor));
    for m in [OptimizeMethod::LBFGS, OptimizeMethod::NelderMead, OptimizeMethod::ParticleSwarm] {
        let r = est.optimize(m, &opts(6)).unwrap();
        let x = r.best_physical();
        eprintln!("edge {}: {x:?} cost {} failures {}", m.name(), -r.best_ln_objective, r.failures);
        assert!(r.failures > 0 && x[0] <= 0.5);
        assert!(-r.best_ln_objective < 0.30, "{}: {x:?}\n{}", m.name(), r.summary());
    }
}

/// Synthetic calibration: `T(t) = A (1 − exp(−t/τ))` with A ~ U(0.5, 5) (logit)
/// and τ ~ LogNormal(ln 20, 0.5) (log), 40 yearly points, σ = 0.05, data from
/// A = 2.0, τ = 15 plus Gaussian noise (seed 11).
fn synthetic_posterior() -> Posterior {
    let params = ParameterSet::new()
        .add_with("A", Arc::new(Uniform::new(0.5, 5.0).unwrap()), Transform::Logit, "K")
        .unwrap()
        .add_with("tau", Arc::new(LogNormal::new(20f64.ln(), 0.5).unwrap()), Transform::Log, "yr")
        .unwrap();
    let times: Vec<f64> = (0..40).map(|t| t as f64).collect();
    let model = |a: f64, tau: f64, t: &[f64]| t.iter().map(|t| a * (1.0 - (-t / tau).exp())).collect::<Vec<_>>();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(11);
    let obs: Vec<f64> = model(2.0, 15.0, &times)
        .into_iter()
        .map(|v| {
            let g: f64 = StandardNormal.sample(&mut rng);
            v + 0.05 * g
        })
        .collect();
    let target = Target::new().add_variable("T", times.clone(), obs, vec![0.05; 40]).unwrap();
    let runner = ClosureRunner::positional(&["A", "tau"], &["T"], move |p: &[f64]| {
        ModelOutput::new(times.clone(), vec![("T".into(), model(p[0], p[1], &times))])
    });
    Posterior::new(params, target, Arc::new(runner), Arc::new(GaussianLikelihood::default())).unwrap()
}

#[test]
fn synthetic_calibration_recovers_known_parameters() {
    let post = synthetic_posterior();
    let est = PointEstimator::from_posterior(post.clone(), Objective::MaxLikelihood).with_executor(Arc::new(SerialExecutor));
    let r = est.optimize(OptimizeMethod::LBFGS, &opts(8)).unwrap();
    eprintln!("{}", r.summary());
    let (a, tau) = (r.best_params["A"], r.best_params["tau"]);
    // The MLE beats (or ties) the truth: it maximises the same function.
    let truth_ll = post.ln_likelihood(&[2.0, 15.0]);
    assert!(r.best_likelihood >= truth_ll - 1e-9, "{} < {truth_ll}", r.best_likelihood);
    // Standard errors from the Fisher information J'J/σ² at the truth (J = ∂T/∂θ),
    // computed here: the estimate must lie within 4 SE of the truth (a 4σ miss
    // has probability ~1e-4 per parameter for this fixed noise draw).
    let times: Vec<f64> = (0..40).map(|t| t as f64).collect();
    let (mut faa, mut fat, mut ftt) = (0.0, 0.0, 0.0);
    for t in &times {
        let e = (-t / 15.0).exp();
        let da = 1.0 - e;
        let dt = -2.0 * t / (15.0 * 15.0) * e;
        faa += da * da / 0.0025;
        fat += da * dt / 0.0025;
        ftt += dt * dt / 0.0025;
    }
    let det = faa * ftt - fat * fat;
    let (se_a, se_t) = ((ftt / det).sqrt(), (faa / det).sqrt());
    eprintln!("A = {a:.4} ± {se_a:.4}, tau = {tau:.3} ± {se_t:.3}");
    assert!((a - 2.0).abs() < 4.0 * se_a && (tau - 15.0).abs() < 4.0 * se_t);
}

fn run_with(ex: Arc<dyn Executor>, m: OptimizeMethod, parallel: bool) -> PointEstimateResult {
    let est = PointEstimator::from_posterior(synthetic_posterior(), Objective::MaxPosterior).with_executor(ex);
    let o = OptimizeOptions { seed: 21, n_restarts: 3, parallel_restarts: parallel, ..Default::default() };
    est.optimize(m, &o).unwrap()
}

#[test]
fn same_seed_same_result_on_one_or_two_threads() {
    for m in [
        OptimizeMethod::LBFGS,
        OptimizeMethod::NelderMead,
        OptimizeMethod::ParticleSwarm,
        OptimizeMethod::RandomSearch { n_samples: 500 },
    ] {
        let a = run_with(Arc::new(RayonExecutor::with_threads(1).unwrap()), m, false);
        let b = run_with(Arc::new(RayonExecutor::with_threads(2).unwrap()), m, true);
        let c = run_with(Arc::new(SerialExecutor), m, true);
        for r in [&b, &c] {
            assert_eq!(a.best_point, r.best_point, "{}", m.name());
            assert_eq!(a.n_evals, r.n_evals, "{}", m.name());
            assert_eq!(a.samples, r.samples, "{}", m.name());
            assert_eq!(a.restarts, r.restarts, "{}", m.name());
        }
        // A different seed gives different draws.
        let est = PointEstimator::from_posterior(synthetic_posterior(), Objective::MaxPosterior)
            .with_executor(Arc::new(SerialExecutor));
        let d = est.optimize(m, &OptimizeOptions { seed: 22, n_restarts: 3, ..Default::default() }).unwrap();
        assert_ne!(a.samples, d.samples, "{}", m.name());
    }
}

#[test]
fn bad_options_name_the_fix() {
    let est = rosen_estimator(2);
    let e =
        est.optimize(OptimizeMethod::LBFGS, &OptimizeOptions { n_restarts: 0, ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("n_restarts must be >= 1"), "{e}");
    let e =
        est.optimize(OptimizeMethod::LBFGS, &OptimizeOptions { tolerance: -1.0, ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("tolerance"), "{e}");
    let e = est.optimize(OptimizeMethod::RandomSearch { n_samples: 0 }, &opts(0)).unwrap_err().to_string();
    assert!(e.contains("n_samples"), "{e}");
    let plain = PointEstimator::new(FnDensity::new(1, |x: &[f64]| -x[0] * x[0]));
    let e = plain.optimize(OptimizeMethod::LBFGS, &opts(0)).unwrap_err().to_string();
    assert!(e.contains("with_start_box"), "{e}");
    let e = rosen_estimator(2).with_start_box(vec![0.0; 2], vec![1.0; 3]).err().unwrap();
    assert!(matches!(e, Error::LengthMismatch { .. }), "{e}");
    let e = "simplex".parse::<OptimizeMethod>().unwrap_err().to_string();
    assert!(e.contains("nelder-mead"), "{e}");
    assert_eq!("random-search:50".parse::<OptimizeMethod>().unwrap(), OptimizeMethod::RandomSearch { n_samples: 50 });
    assert_eq!("L-BFGS".parse::<OptimizeMethod>().unwrap(), OptimizeMethod::LBFGS);
    // No finite starting point at all.
    let never = PointEstimator::new(FnDensity::new(1, |_: &[f64]| f64::NAN)).with_start_box(vec![0.0], vec![1.0]).unwrap();
    let e = never.optimize(OptimizeMethod::LBFGS, &opts(0)).unwrap_err().to_string();
    assert!(e.contains("restart 0") && e.contains("-inf or NaN"), "{e}");
}

#[test]
fn best_fit_file_round_trips_and_starts_a_ball() {
    let post = synthetic_posterior();
    let r = PointEstimator::from_posterior(post.clone(), Objective::MaxPosterior)
        .optimize(OptimizeMethod::LBFGS, &OptimizeOptions { n_restarts: 2, seed: 3, ..Default::default() })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for name in ["best.toml", "best.json"] {
        let path = dir.path().join(name);
        r.best_fit().write(&path).unwrap();
        let back = climcal::optimizer::BestFit::read(&path).unwrap();
        let want = r.best_fit();
        // serde_json (without its float_roundtrip feature) and toml may parse a
        // float 1 ulp away from the printed value; 1e-14 relative is a few ulp.
        for (k, v) in &want.params {
            let b = back.params[k];
            assert!((b - v).abs() <= 1e-14 * v.abs(), "{name}: {k}: {b} vs {v}");
        }
        assert_eq!(
            (back.method.as_str(), back.objective, back.n_evals, back.seed),
            (want.method.as_str(), want.objective, want.n_evals, want.seed)
        );
    }
    let fit = climcal::optimizer::BestFit::read(&dir.path().join("best.toml")).unwrap();
    let centre = fit.values_for(&post.param_names()).unwrap();
    let s = EnsembleSampler::new(post, 1).serial();
    let st = s.initialize(InitMethod::Ball { center: centre, radius: 1e-3 }).unwrap();
    assert!(st.ln_probs.iter().all(|v| v.is_finite()));
    let e = fit.values_for(&["ecs".to_string()]).unwrap_err().to_string();
    assert!(e.contains("'ecs'") && e.contains("climcal optimize"), "{e}");
}
