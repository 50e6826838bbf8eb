//! Cost of the derived quantities (ECS, TCR, warming, aerosol ERF, ocean heat uptake)
//! per evaluation of the two-layer posterior: `ln_prob` with and without them, and
//! their parts (`derive` on a finished run; TCR's own 1 %/yr run). The per-stored-row
//! alternative costs one model run plus `derive` per stored walker-row, i.e.
//! `(run + derive) / thin` per evaluation: the README compares the two from these
//! numbers (per evaluation is what climcal does).
//!
//! Run: `cargo bench --bench derived` (about 30 s: 1 s warm-up and 3 s of
//! measurement per function; add `--no-default-features` to build without HDF5/MPI).

use std::hint::black_box;
use std::time::Duration;

use climcal::density::LogDensity;
use climcal::models::two_layer::F2X_AR6;
use climcal::runner::ModelRunner;
use criterion::{criterion_group, criterion_main, Criterion};

#[path = "../examples/two_layer_setup/setup.rs"]
mod setup;

fn bench(c: &mut Criterion) {
    let data = setup::data_dir();
    let model = setup::historical_model(setup::historical_forcing(&data).unwrap()).unwrap();
    let theta = [1.2, 8.0, 100.0, 0.6, 1.3, 1.0]; // lambda, C, C_d, gamma, epsilon, aerosol_scale
    let plain = setup::historical_posterior(&data).unwrap();
    let with = plain.clone().with_derived(true);
    assert_eq!(with.n_blobs(), 5);
    let mut u = vec![0.0; theta.len()];
    plain.to_sampler(&theta, &mut u);
    let out = model.run(&theta).unwrap();
    let mut d = vec![0.0; 5];
    let (p, _, _) = model.physical(&theta).unwrap();

    let mut g = c.benchmark_group("derived");
    g.bench_function("ln_prob_without_derived", |b| b.iter(|| plain.ln_prob(black_box(&u))));
    g.bench_function("ln_prob_with_derived", |b| b.iter(|| with.ln_prob_with_blob(black_box(&u), &mut d)));
    g.bench_function("run_1750_2024", |b| b.iter(|| model.run(black_box(&theta)).unwrap()));
    g.bench_function("derive_all_five", |b| b.iter(|| model.derive(black_box(&theta), &out, &mut d).unwrap()));
    g.bench_function("tcr_only", |b| b.iter(|| black_box(&p).tcr(F2X_AR6)));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(50);
    targets = bench
}
criterion_main!(benches);
