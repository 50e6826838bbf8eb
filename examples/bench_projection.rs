//! Projections per second: 10 000 two-layer draws × the five built-in AR6 SSP
//! scenarios (1750–2100, 351 years, 3 outputs), the core alone (no file), on one
//! thread and on all cores, best of 3 interleaved repeats:
//! `cargo run --release --example bench_projection`. The CLI's end-to-end figure
//! (reading the chain, writing the HDF5 file) is `launch/bench.d/85-projection.sh`.

use std::sync::Arc;
use std::time::Instant;

use climcal::executor::{Executor, RayonExecutor, SerialExecutor};
use climcal::projection::scenario::{builtin_names, Join, Scenario};
use climcal::projection::{Projector, BASELINE, LATE_CENTURY};

#[path = "two_layer_setup/setup.rs"]
mod setup;

fn main() -> climcal::Result<()> {
    let data = setup::data_dir();
    let model = setup::historical_model(setup::historical_forcing(&data)?)?;
    let scenarios = builtin_names().iter().map(|n| Scenario::builtin(n)).collect::<climcal::Result<Vec<_>>>()?;
    let p = Projector::new(Arc::new(model), scenarios, Join::default())?;
    // 10 000 draws spread over the posterior's range (λ, C, C_d, γ, ε, aerosol scale).
    let n = 10_000;
    let mut draws = Vec::with_capacity(n * 6);
    for k in 0..n {
        let t = (k as f64 + 0.5) / n as f64;
        let s = ((k * 7919) % n) as f64 / n as f64;
        draws.extend_from_slice(&[0.7 + 1.0 * t, 6.0 + 4.0 * s, 80.0 + 60.0 * t, 0.5 + 0.4 * s, 1.0 + 0.6 * t, 0.6 + 0.8 * s]);
    }
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let execs: Vec<(String, Box<dyn Executor>)> = vec![
        ("1 thread".into(), Box::new(SerialExecutor)),
        (format!("{cores} threads"), Box::new(RayonExecutor::with_threads(cores)?)),
    ];
    let mut best = vec![f64::INFINITY; execs.len()];
    let mut check = 0.0;
    for _ in 0..3 {
        for (e, (_, ex)) in execs.iter().enumerate() {
            let t0 = Instant::now();
            for i in 0..p.scenarios().len() {
                let r = p.run(i, &draws, &**ex);
                check += r.change("Surface Temperature", LATE_CENTURY, BASELINE)?[n / 2];
            }
            best[e] = best[e].min(t0.elapsed().as_secs_f64());
        }
    }
    let total = (n * p.scenarios().len()) as f64;
    println!(
        "projections of {n} draws × {} scenarios ({} years, {} outputs), core only, best of 3:",
        p.scenarios().len(),
        p.years().len(),
        p.outputs().len()
    );
    for ((name, _), b) in execs.iter().zip(&best) {
        println!("  {name:<10} {b:8.3} s  {:>10.0} projections/s  {:6.2} µs each", total / b, b / total * 1e6);
    }
    println!("(checksum {check:.6}; machine: {cores} cores)");
    Ok(())
}
