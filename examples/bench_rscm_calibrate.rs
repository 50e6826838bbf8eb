//! rscm-calibrate 0.5.0 (RSCM's own calibration crate) sampling the RSCM twin of
//! `cluster-examples/rscm-twin/`: the same model (CarbonCycle + CO2ERF, 1850–2020,
//! the emissions of `model.toml`), priors, observations, 16 walkers and number of
//! steps as `climcal run cluster-examples/rscm-twin.toml`, so that
//! `launch/bench.d/47-rscm.sh` can print their evaluations/s side by side. The model
//! is built per evaluation as rscm-calibrate's docs do it (`DefaultModelRunner` with
//! a factory calling RSCM's `ModelBuilder`, here through climcal's `carbon_cycle_erf`, the twin's builder); rscm-calibrate evaluates each half of
//! the ensemble with rayon (`RAYON_NUM_THREADS` sets its threads).
//!
//! Run: `cargo run --release --features bench-rscm-calibrate --example bench_rscm_calibrate -- STEPS [REPEATS]`

use std::time::Instant;

use climcal::models::rscm::carbon_cycle_erf;
use ndarray_h5::Array1;
use rscm_calibrate::{DefaultModelRunner, EnsembleSampler, GaussianLikelihood, ParameterSet, Target, Uniform, WalkerInit};
use rscm_core::model::Model;

const DIR: &str = "cluster-examples/rscm-twin";

/// The exogenous emissions of the twin's model file (what `examples/rscm_twin.rs` wrote).
fn emissions_of_model_file() -> Vec<f64> {
    let text = std::fs::read_to_string(format!("{DIR}/model.toml")).expect("run from the repository root");
    let v: toml::Value = text.parse().expect("TOML");
    let series = v["collection"]["timeseries"].as_array().expect("timeseries");
    let e = series.iter().find(|s| s["name"].as_str() == Some("Emissions|CO2|Anthropogenic")).expect("emissions");
    e["data"]["Scalar"]["values"]["data"].as_array().expect("data").iter().map(|x| x.as_float().expect("number")).collect()
}

/// climcal's twin model (`carbon_cycle_erf`), built for rscm-calibrate's runner.
fn build(years: &Array1<f64>, emissions: &Array1<f64>, tau: f64, erf_2xco2: f64) -> Model {
    let (y, e) = (years.as_slice().expect("contiguous years"), emissions.as_slice().expect("contiguous emissions"));
    carbon_cycle_erf(y, e, tau, erf_2xco2).expect("the twin model builds")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let steps: usize = args.next().map(|s| s.parse().expect("steps: an integer")).unwrap_or(40);
    let repeats: usize = args.next().map(|s| s.parse().expect("repeats: an integer")).unwrap_or(1);
    let years = Array1::from((1850..=2020).map(f64::from).collect::<Vec<_>>());
    let emissions = Array1::from(emissions_of_model_file());
    assert_eq!(emissions.len(), years.len());

    let mut target = Target::new();
    let csv = std::fs::read_to_string(format!("{DIR}/observations.csv")).expect("observations");
    for line in csv.lines().filter(|l| !l.starts_with('#') && !l.starts_with("year")) {
        let f: Vec<f64> = line.split(',').map(|x| x.parse().expect("number")).collect();
        target.add_variable("Atmospheric Concentration|CO2").add(f[0], f[1], f[2]).expect("obs");
        target.add_variable("Effective Radiative Forcing|CO2").add(f[0], f[3], f[4]).expect("obs");
    }
    let mut params = ParameterSet::new();
    params.add("tau", Box::new(Uniform::new(5.0, 200.0).expect("prior")));
    params.add("erf_2xco2", Box::new(Uniform::new(1.0, 8.0).expect("prior")));
    let (y, e) = (years.clone(), emissions.clone());
    let runner = DefaultModelRunner::new(
        vec!["tau".into(), "erf_2xco2".into()],
        vec!["Atmospheric Concentration|CO2".into(), "Effective Radiative Forcing|CO2".into()],
        move |p: &[f64]| Ok(build(&y, &e, p[0], p[1])),
    );
    let sampler = EnsembleSampler::new(params, runner, GaussianLikelihood::new(), target);
    let walkers = 16;
    let mut best = 0.0f64;
    let mut mean_lp = f64::NAN;
    for _ in 0..repeats {
        let t0 = Instant::now();
        let chain = sampler
            .run_with_walkers(
                steps,
                WalkerInit::Ball { center: vec![60.0, 3.0], radius: 0.05 },
                walkers,
                1,
                None::<fn(&rscm_calibrate::ProgressInfo)>,
            )
            .expect("rscm-calibrate runs");
        let dt = t0.elapsed().as_secs_f64();
        // Initial evaluations included, as rscm-calibrate makes them inside run.
        best = best.max(((steps + 1) * walkers) as f64 / dt);
        let lp = chain.flat_log_probs(steps / 2);
        mean_lp = lp.iter().sum::<f64>() / lp.len() as f64;
    }
    println!(
        "# rscm-calibrate 0.5.0: RSCM twin (CarbonCycle + CO2ERF, 1850-2020), {walkers} walkers x {steps} steps, \
         best of {repeats}; mean ln p of the second half {mean_lp:.2}"
    );
    println!("rscm_calibrate_evals_per_second {best:.1}");
}
