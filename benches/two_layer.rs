//! Cost of the two-layer model: construction, one 1750–2024 run, and the whole
//! posterior log-probability (prior + model + Gaussian likelihood vs HadCRUT5 + OHC).
//!
//! Run: `cargo bench --no-default-features --bench two_layer`

use std::hint::black_box;
use std::sync::Arc;

use climcal::density::LogDensity;
use climcal::models::two_layer::TwoLayerModel;
use climcal::runner::ModelRunner;
use criterion::{criterion_group, criterion_main, Criterion};

#[path = "../examples/two_layer_setup/setup.rs"]
mod setup;

fn bench(c: &mut Criterion) {
    let data = setup::data_dir();
    let forcing = Arc::new(setup::historical_forcing(&data).unwrap());
    let model = setup::historical_model(forcing.clone()).unwrap();
    let theta = [1.2, 8.0, 100.0, 0.6, 1.3, 1.0]; // lambda, C, C_d, gamma, epsilon, aerosol_scale
    let post = setup::historical_posterior(&data).unwrap();
    let mut u = vec![0.0; theta.len()];
    post.to_sampler(&theta, &mut u);
    assert!(post.ln_prob(&u).is_finite());

    let mut g = c.benchmark_group("two_layer");
    g.bench_function("construct_from_forcing", |b| b.iter(|| setup::historical_model(black_box(forcing.clone())).unwrap()));
    g.bench_function("construct_with_forcing_copy", |b| {
        b.iter(|| TwoLayerModel::builder((*black_box(&forcing)).as_ref().clone()).build().unwrap())
    });
    g.bench_function("construct_from_csv", |b| {
        b.iter(|| setup::historical_model(setup::historical_forcing(black_box(&data)).unwrap()).unwrap())
    });
    g.bench_function("run_1750_2024", |b| b.iter(|| model.run(black_box(&theta)).unwrap()));
    let n = forcing.len();
    let (mut t, mut h, mut nn) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    g.bench_function("run_into_1750_2024", |b| b.iter(|| model.run_into(black_box(&theta), &mut t, &mut h, &mut nn).unwrap()));
    g.bench_function("posterior_ln_prob", |b| b.iter(|| post.ln_prob(black_box(&u))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
