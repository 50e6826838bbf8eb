//! Evaluations and wall time for each point-estimation method to reach a cost
//! within `TOL` of the minimum of Rosenbrock-5D (minimum 0 at x = 1), one restart
//! from x0 = (−1.2, 1, −1.2, 1, −1.2) (the box [−2, 2]^5 for particle swarm and
//! random search), on one thread.
//!
//! Prints one tab-separated row per method:
//! `impl method evals_to_tol total_evals ms_to_tol ms_total final_cost`
//! (`-` where the tolerance was not reached). `launch/bench.d/60-optimizer.sh`
//! puts these side by side with scipy.
//!
//! `cargo run --release --example bench_optimizer [-- REPEATS]`
//!
//! `cargo run --release --example bench_optimizer -- REPEATS two-layer` does the same
//! for the MAP of the two-layer HadCRUT5 calibration
//! (`cluster-examples/two-layer-hadcrut5.toml`, 6 parameters, 187 observations):
//! the reference optimum ln p* is the best of L-BFGS and Nelder–Mead with 8 restarts
//! each at tolerance 1e-10; a method has reached it when its ln-posterior is within
//! `TOL_MAP` of ln p*. One restart from the prior medians for L-BFGS and
//! Nelder–Mead (in the sampler's log/logit space), prior draws (seed 1) for
//! particle swarm and random search; `final_cost` is ln p* − ln p(best).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use climcal::config::RunConfig;
use climcal::density::{FnDensity, LogDensity};
use climcal::executor::SerialExecutor;
use climcal::optimizer::{Objective, OptimizeMethod, OptimizeOptions, PointEstimator, PosteriorObjective};
use climcal::posterior::Posterior;

const DIM: usize = 5;
/// Cost within this of the minimum counts as reached (the same in the scipy script).
const TOL: f64 = 1e-6;

fn rosenbrock(x: &[f64]) -> f64 {
    x.windows(2).map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2)).sum()
}

/// Within this of the best ln-posterior found counts as having reached the MAP
/// (1e-3 in ln p is a density ratio of 1.001: far below the posterior's width, whose
/// 90 % region spans several units of ln p).
const TOL_MAP: f64 = 1e-3;

/// The MAP objective with the time of the first evaluation within `TOL_MAP` of `target`.
struct Timed {
    inner: PosteriorObjective,
    target: f64,
    t0: Instant,
    hit: Mutex<Option<f64>>,
}

impl LogDensity for Timed {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn ln_prob(&self, u: &[f64]) -> f64 {
        let v = self.inner.ln_prob(u);
        if v >= self.target - TOL_MAP {
            let mut g = self.hit.lock().unwrap();
            if g.is_none() {
                *g = Some(self.t0.elapsed().as_secs_f64() * 1e3);
            }
        }
        v
    }
    fn to_physical(&self, u: &[f64], out: &mut [f64]) {
        self.inner.to_physical(u, out)
    }
    fn to_sampler(&self, x: &[f64], out: &mut [f64]) {
        self.inner.to_sampler(x, out)
    }
    fn param_names(&self) -> Vec<String> {
        self.inner.param_names()
    }
}

/// Median of the repeats' times (the upper one for an even count).
fn med(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn two_layer(repeats: usize) -> climcal::Result<()> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-examples/two-layer-hadcrut5.toml");
    let post: Posterior = RunConfig::load(&path)?.build_problem()?.posterior.expect("a calibration posterior");
    // Reference optimum.
    let t = Instant::now();
    let reference = PointEstimator::from_posterior(post.clone(), Objective::MaxPosterior).with_executor(Arc::new(SerialExecutor));
    let mut best = f64::NEG_INFINITY;
    let mut best_x = Vec::new();
    for m in [OptimizeMethod::LBFGS, OptimizeMethod::NelderMead] {
        let r = reference.optimize(m, &OptimizeOptions { n_restarts: 8, seed: 1, tolerance: 1e-10, ..Default::default() })?;
        if r.best_ln_objective > best {
            best = r.best_ln_objective;
            best_x = r.best_physical();
        }
    }
    eprintln!(
        "two-layer HadCRUT5 MAP: ln p* = {best:.6} at {:?} ({:?}) [reference search {:.1} s]",
        best_x.iter().map(|v| format!("{v:.4}")).collect::<Vec<_>>(),
        post.param_names(),
        t.elapsed().as_secs_f64()
    );
    // Prior medians: λ (truncated normal 1.16 ± 0.395), C, C_d, γ, ε (log-normal medians), aerosol scale 1.
    let x0 = [1.16, 8.0, 100.0, 0.6, 1.2, 1.0];
    assert_eq!(post.param_names(), ["lambda", "C", "C_d", "gamma", "epsilon", "aerosol_scale"]);
    println!("impl\tmethod\tevals_to_tol\ttotal_evals\tms_to_tol\tms_total\tlnp_gap");
    let methods = [
        OptimizeMethod::LBFGS,
        OptimizeMethod::NelderMead,
        OptimizeMethod::ParticleSwarm,
        OptimizeMethod::RandomSearch { n_samples: 100_000 },
    ];
    for m in methods {
        let (mut ms_tol, mut ms_total, mut row) = (Vec::new(), Vec::new(), None);
        for _ in 0..repeats {
            let t0 = Instant::now();
            let d = Arc::new(Timed {
                inner: PosteriorObjective::new(post.clone(), Objective::MaxPosterior),
                target: best,
                t0,
                hit: Mutex::new(None),
            });
            // Arc<Timed> is a LogDensity too; the clone lets us read `hit` after the run.
            let est = PointEstimator::new(d.clone()).with_executor(Arc::new(SerialExecutor));
            let est = match m {
                OptimizeMethod::LBFGS | OptimizeMethod::NelderMead => est.with_start_point(&x0)?,
                _ => est.with_start_sampler(Arc::new(post.clone())),
            };
            let opts = OptimizeOptions { n_restarts: 1, seed: 1, tolerance: 1e-10, ..Default::default() };
            let r = est.optimize(m, &opts)?;
            ms_total.push(t0.elapsed().as_secs_f64() * 1e3);
            if let Some(h) = *d.hit.lock().unwrap() {
                ms_tol.push(h);
            }
            row = Some((r.evals_to_reach(best - TOL_MAP), r.n_evals, best - r.best_ln_objective));
        }
        let (to_tol, total, gap) = row.expect("at least one repeat");
        println!(
            "climcal\t{}\t{}\t{}\t{}\t{:.3}\t{:.2e}",
            m.name(),
            to_tol.map_or("-".into(), |v| v.to_string()),
            total,
            if ms_tol.is_empty() { "-".into() } else { format!("{:.3}", med(ms_tol)) },
            med(ms_total),
            gap
        );
    }
    Ok(())
}

fn main() -> climcal::Result<()> {
    let repeats: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    if std::env::args().nth(2).as_deref() == Some("two-layer") {
        return two_layer(repeats);
    }
    let x0: Vec<f64> = (0..DIM).map(|i| if i % 2 == 0 { -1.2 } else { 1.0 }).collect();
    let methods = [
        OptimizeMethod::LBFGS,
        OptimizeMethod::NelderMead,
        OptimizeMethod::ParticleSwarm,
        OptimizeMethod::RandomSearch { n_samples: 200_000 },
    ];
    println!("impl\tmethod\tevals_to_tol\ttotal_evals\tms_to_tol\tms_total\tfinal_cost");
    for m in methods {
        let mut times = Vec::new();
        let mut row = None;
        for _ in 0..repeats {
            // The first time the cost drops below TOL, measured inside the objective.
            let t0 = Instant::now();
            let hit: Arc<Mutex<Option<f64>>> = Arc::new(Mutex::new(None));
            let h = hit.clone();
            let d = FnDensity::new(DIM, move |x: &[f64]| {
                let c = rosenbrock(x);
                if c <= TOL {
                    let mut g = h.lock().unwrap();
                    if g.is_none() {
                        *g = Some(t0.elapsed().as_secs_f64() * 1e3);
                    }
                }
                -c
            });
            let est = PointEstimator::new(d).with_executor(Arc::new(SerialExecutor));
            let est = match m {
                OptimizeMethod::LBFGS | OptimizeMethod::NelderMead => est.with_start_point(&x0)?,
                _ => est.with_start_box(vec![-2.0; DIM], vec![2.0; DIM])?,
            };
            // Tight solver tolerances so that each run goes past TOL when it can.
            let opts = OptimizeOptions { n_restarts: 1, seed: 1, tolerance: 1e-10, keep_samples: true, ..Default::default() };
            let r = est.optimize(m, &opts)?;
            let total_ms = t0.elapsed().as_secs_f64() * 1e3;
            let to_tol = r.evals_to_reach(-TOL);
            let ms_to_tol = *hit.lock().unwrap();
            times.push((ms_to_tol, total_ms));
            row = Some((to_tol, r.n_evals, -r.best_ln_objective));
        }
        // Median over repeats (the evaluation counts are identical: fixed seed).
        let (to_tol, total, cost) = row.expect("at least one repeat");
        let ms_tol: Vec<f64> = times.iter().filter_map(|t| t.0).collect();
        let ms_total = med(times.iter().map(|t| t.1).collect());
        let fmt_opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        println!(
            "climcal\t{}\t{}\t{}\t{}\t{:.3}\t{:.3e}",
            m.name(),
            fmt_opt(to_tol.map(|v| v.to_string())),
            total,
            fmt_opt((!ms_tol.is_empty()).then(|| format!("{:.3}", med(ms_tol)))),
            ms_total,
            cost
        );
    }
    Ok(())
}
