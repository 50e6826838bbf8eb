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

use std::sync::{Arc, Mutex};
use std::time::Instant;

use climcal::density::FnDensity;
use climcal::executor::SerialExecutor;
use climcal::optimizer::{OptimizeMethod, OptimizeOptions, PointEstimator};

const DIM: usize = 5;
/// Cost within this of the minimum counts as reached (the same in the scipy script).
const TOL: f64 = 1e-6;

fn rosenbrock(x: &[f64]) -> f64 {
    x.windows(2).map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2)).sum()
}

fn main() -> climcal::Result<()> {
    let repeats: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
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
        let med = |mut v: Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
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
