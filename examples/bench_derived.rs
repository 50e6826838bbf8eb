//! Cost of the derived quantities per evaluation of the two-layer HadCRUT5 posterior,
//! side by side in one process (interleaved repeats, best of each):
//! `cargo run --release --example bench_derived`. The criterion version is
//! `cargo bench --bench derived`.

use std::hint::black_box;
use std::time::Instant;

use climcal::density::LogDensity;
use climcal::runner::ModelRunner;

#[path = "two_layer_setup/setup.rs"]
mod setup;

fn per_call(n: usize, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() / n as f64 * 1e6
}

fn main() -> climcal::Result<()> {
    let data = setup::data_dir();
    let model = setup::historical_model(setup::historical_forcing(&data)?)?;
    let theta = [1.2, 8.0, 100.0, 0.6, 1.3, 1.0];
    let plain = setup::historical_posterior(&data)?;
    let with = plain.clone().with_derived(true);
    let mut u = vec![0.0; 6];
    plain.to_sampler(&theta, &mut u);
    let out = model.run(&theta)?;
    let mut d = vec![0.0; 5];
    let n = 200_000;
    let mut best = [f64::INFINITY; 4];
    for _ in 0..7 {
        let r = [
            per_call(n, || {
                black_box(plain.ln_prob(black_box(&u)));
            }),
            per_call(n, || {
                black_box(with.ln_prob_with_blob(black_box(&u), &mut d));
            }),
            per_call(n, || {
                model.derive(black_box(&theta), &out, &mut d).unwrap();
            }),
            per_call(n, || {
                black_box(model.run(black_box(&theta)).unwrap());
            }),
        ];
        for (b, v) in best.iter_mut().zip(r) {
            *b = b.min(v);
        }
    }
    println!("ln_prob without derived   {:.3} µs", best[0]);
    println!("ln_prob with derived      {:.3} µs  (ratio {:.3})", best[1], best[1] / best[0]);
    println!("derive (all five, of which TCR's own 80-year run) {:.3} µs", best[2]);
    println!("model run 1750-2024       {:.3} µs", best[3]);
    Ok(())
}
