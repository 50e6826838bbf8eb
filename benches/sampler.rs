//! Criterion benchmarks of the ensemble sampler's overhead on a 10-D standard normal
//! with 32 walkers, single thread (`.serial()`): one ensemble step, and a 1000-step
//! run; throughput is reported in log-density evaluations (elements) per second.
//! Also the autocorrelation time against chain length.
//!
//! ```text
//! cargo bench --no-default-features --bench sampler
//! ```

use std::hint::black_box;

use climcal::diagnostics::integrated_time;
use climcal::prelude::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::Array3;

fn gaussian(dim: usize) -> FnDensity<impl Fn(&[f64]) -> f64 + Send + Sync> {
    FnDensity::new(dim, |x: &[f64]| -0.5 * x.iter().map(|v| v * v).sum::<f64>())
}

fn ensemble_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("ensemble_step");
    for (dim, walkers) in [(2usize, 32usize), (10, 32), (10, 64), (20, 40)] {
        let s = EnsembleSampler::new(gaussian(dim), 1).with_n_walkers(walkers).unwrap().serial();
        let mut st = s.initialize_without_prior(InitMethod::Ball { center: vec![0.0; dim], radius: 1.0 }).unwrap();
        let opts = RunOptions { checkpoint_every: 0, ..RunOptions::default() };
        g.throughput(Throughput::Elements(walkers as u64));
        g.bench_with_input(BenchmarkId::new(format!("{dim}d"), walkers), &walkers, |b, _| {
            b.iter(|| black_box(s.run(&mut st, 1, &opts).unwrap()))
        });
    }
    g.finish();
}

fn run_1000_steps(c: &mut Criterion) {
    let mut g = c.benchmark_group("run_1000_steps");
    g.sample_size(20);
    let (dim, walkers, steps) = (10usize, 32usize, 1000u64);
    let s = EnsembleSampler::new(gaussian(dim), 1).with_n_walkers(walkers).unwrap().serial();
    let opts = RunOptions { checkpoint_every: 0, ..RunOptions::default() };
    g.throughput(Throughput::Elements(steps * walkers as u64));
    g.bench_function("10d_32_walkers", |b| {
        b.iter(|| {
            let mut st = s.initialize_without_prior(InitMethod::Ball { center: vec![0.0; dim], radius: 1.0 }).unwrap();
            black_box(s.run(&mut st, steps, &opts).unwrap())
        })
    });
    g.finish();
}

fn autocorr_time(c: &mut Criterion) {
    let mut g = c.benchmark_group("integrated_time");
    for steps in [1_000usize, 10_000, 100_000] {
        let mut s = 1u64;
        let x = Array3::from_shape_fn((steps, 32, 1), |_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        });
        g.throughput(Throughput::Elements((steps * 32) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(steps), &x, |b, x| {
            b.iter(|| black_box(integrated_time(x.view(), 5.0, 50.0)))
        });
    }
    g.finish();
}

criterion_group!(benches, ensemble_step, run_1000_steps, autocorr_time);
criterion_main!(benches);
