//! Derived quantities (`src/derived.rs`) and the two-layer model's: TCR against an
//! independent integrator and the analytic ramp response, the period quantities
//! against the model's own run, and what a calibration stores.
//!
//! Run: `cargo test --no-default-features --test derived` (the chain-file test needs
//! the default features).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use climcal::derived::{self, DerivedTable};
use climcal::models::two_layer::{Feedback, Forcing, TwoLayerModel, TwoLayerParams, F2X_AR6};
use climcal::prelude::*;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-examples/data").join(name)
}

/// CMIP6-like parameters (MRI-ESM2-0's published two-layer fit, rounded).
fn mri() -> TwoLayerParams {
    TwoLayerParams { lambda: 1.2, c: 8.48, c_d: 98.2, gamma: 0.856, epsilon: 1.477 }
}

/// TCR by classical RK4 on the ODEs themselves, with the forcing of the 1 %/yr run as
/// the model defines it (F = F_2x (y + ½)/70 over calendar year y of the run, so that
/// it reaches F_2x at year 70: 1.01^70 = 2.007), `n` steps a year, annual means of T
/// by the trapezoid rule, and the mean of years 61–80.
fn tcr_rk4(p: &TwoLayerParams, f2x: f64, n: usize) -> f64 {
    let rhs = |t: f64, td: f64, f: f64| ((f - p.lambda * t - p.epsilon * p.gamma * (t - td)) / p.c, p.gamma * (t - td) / p.c_d);
    let h = 1.0 / n as f64;
    let (mut t, mut td) = (0.0f64, 0.0f64);
    let mut acc = 0.0;
    for y in 0..80 {
        let f = f2x * (y as f64 + 0.5) / 70.0;
        let mut year = 0.5 * t;
        for _ in 0..n {
            let k1 = rhs(t, td, f);
            let k2 = rhs(t + 0.5 * h * k1.0, td + 0.5 * h * k1.1, f);
            let k3 = rhs(t + 0.5 * h * k2.0, td + 0.5 * h * k2.1, f);
            let k4 = rhs(t + h * k3.0, td + h * k3.1, f);
            t += h / 6.0 * (k1.0 + 2.0 * k2.0 + 2.0 * k3.0 + k4.0);
            td += h / 6.0 * (k1.1 + 2.0 * k2.1 + 2.0 * k3.1 + k4.1);
            year += t;
        }
        year -= 0.5 * t;
        if y >= 60 {
            acc += year * h;
        }
    }
    acc / 20.0
}

/// The analytic response to the continuous ramp F(t) = k t (k = F_2x/70), from the
/// Geoffroy et al. (2013b) modes written independently here:
/// T(t) = k/λ Σ a_i [t − τ_i (1 − e^{−t/τ_i})], averaged over t ∈ [60, 80].
fn tcr_analytic_ramp(p: &TwoLayerParams, f2x: f64) -> f64 {
    let (l, c, cd, g, e) = (p.lambda, p.c, p.c_d, p.gamma, p.epsilon);
    let b = (l + e * g) / c + g / cd;
    let bs = (l + e * g) / c - g / cd;
    let delta = b * b - 4.0 * l * g / (c * cd);
    let tau_f = c * cd / (2.0 * l * g) * (b - delta.sqrt());
    let tau_s = c * cd / (2.0 * l * g) * (b + delta.sqrt());
    let phi_f = c / (2.0 * e * g) * (bs - delta.sqrt());
    let phi_s = c / (2.0 * e * g) * (bs + delta.sqrt());
    let a_f = phi_s * tau_f * l / (c * (phi_s - phi_f));
    let a_s = -phi_f * tau_s * l / (c * (phi_s - phi_f));
    let k = f2x / 70.0;
    // ∫ [t − τ + τ e^{−t/τ}] dt = t²/2 − τ t − τ² e^{−t/τ}
    let prim = |t: f64, tau: f64| t * t / 2.0 - tau * t - tau * tau * (-t / tau).exp();
    let mode = |a: f64, tau: f64| a * (prim(80.0, tau) - prim(60.0, tau)) / 20.0;
    k / l * (mode(a_f, tau_f) + mode(a_s, tau_s))
}

fn lambda_model(forcing: Forcing) -> TwoLayerModel {
    TwoLayerModel::builder(forcing).feedback(Feedback::Lambda).build().unwrap()
}

#[test]
fn tcr_matches_an_independent_integrator_and_the_analytic_ramp() {
    let model = lambda_model(Forcing::constant(7.8, 0.0, 150).unwrap());
    for p in [
        mri(),
        TwoLayerParams { lambda: 0.6, c: 5.0, c_d: 200.0, gamma: 0.4, epsilon: 1.0 },
        TwoLayerParams { lambda: 2.0, c: 12.0, c_d: 50.0, gamma: 1.0, epsilon: 0.8 },
    ] {
        let x = [p.lambda, p.c, p.c_d, p.gamma, p.epsilon];
        let d = derived::compute(&model, &x).unwrap();
        let tcr = d[1];
        // RK4 with h = 2.5e-4 yr: its error ~ (h/τ_f)^4 is negligible; the trapezoid
        // rule's h²/12 · |T''| dominates (it falls 16× from h = 1e-3, where it is
        // 4–9e-10 K, to 2.5e-4: 2–6e-11 K), so 1e-9 K leaves a 15× margin.
        let rk = tcr_rk4(&p, F2X_AR6, 4000);
        assert!((tcr - rk).abs() < 1e-9, "{p:?}: TCR {tcr} vs RK4 {rk}");
        // The model's forcing is the ramp's annual mean held over each year; the
        // difference from the continuous ramp is a zero-mean sawtooth (amplitude
        // k/2 = 0.028 W m-2). Its periodic response has zero annual mean; what is left
        // is the start-up transient, a pulse of k/12 W yr m-2 (the sawtooth's first
        // moment) that warms the upper layer by at most k/(12 C) ≈ 1e-3 K at C = 5 and
        // decays with τ_f to its slow-mode share by year 60: ≪ 1e-4 K (seen: 3–7e-6 K).
        let an = tcr_analytic_ramp(&p, F2X_AR6);
        assert!((tcr - an).abs() < 1e-4, "{p:?}: TCR {tcr} vs analytic ramp {an}");
        // TCR < ECS for a finite deep ocean.
        assert!(tcr < d[0] && (d[0] - F2X_AR6 / p.lambda).abs() < 1e-12);
    }
    // Negative control: another F_2x must not pass.
    let rk = tcr_rk4(&mri(), 3.7, 4000);
    let d = derived::compute(&model, &[1.2, 8.48, 98.2, 0.856, 1.477]).unwrap();
    assert!((d[1] - rk).abs() > 0.05);
}

#[test]
fn the_two_layer_model_declares_what_its_forcing_allows() {
    let names = |m: &TwoLayerModel| m.derived_quantities().into_iter().map(|q| q.name).collect::<Vec<_>>();
    let step = lambda_model(Forcing::constant(7.8, 0.0, 150).unwrap());
    assert_eq!(names(&step), ["ECS", "TCR"]);
    let hist = Forcing::from_csv(&data("ERF_best_aggregates_1750-2024.csv"), &Default::default(), None).unwrap();
    let m = lambda_model(hist.clone());
    assert_eq!(names(&m), ["ECS", "TCR", "warming_2015-2024", "aerosol_ERF_2005-2014", "ocean_heat_uptake_1971-2018"]);
    let units: Vec<String> = m.derived_quantities().into_iter().map(|q| q.unit).collect();
    assert_eq!(units, ["K", "K", "K", "W m-2", "ZJ"]);
    // Forcing ending in 2019 cannot give the 2015–2024 warming.
    let short = Forcing::from_csv(&data("AR6_ERF_1750-2019.csv"), &Default::default(), None).unwrap();
    assert_eq!(names(&lambda_model(short)), ["ECS", "TCR", "aerosol_ERF_2005-2014", "ocean_heat_uptake_1971-2018"]);
}

#[test]
fn period_quantities_come_from_the_run() {
    let hist = Forcing::from_csv(&data("ERF_best_aggregates_1750-2024.csv"), &Default::default(), None).unwrap();
    let m = TwoLayerModel::builder(hist.clone()).feedback(Feedback::Lambda).ocean_heat_fraction(0.91).build().unwrap();
    let x = [1.3, 8.0, 100.0, 0.6, 1.2, 0.8, 1.0];
    let d = derived::compute(&m, &x).unwrap();
    let out = m.run(&x).unwrap();
    let years = out.times();
    let at = |y: f64| years.iter().position(|&t| t == y).unwrap();
    let t = out.get("Surface Temperature").unwrap();
    let mean = |a: f64, b: f64| {
        let (i, j) = (at(a), at(b));
        t[i..=j].iter().sum::<f64>() / (j - i + 1) as f64
    };
    assert!((d[2] - (mean(2015.0, 2024.0) - mean(1850.0, 1900.0))).abs() < 1e-12);
    let aer = hist.aerosol();
    let aer_mean = aer[at(2005.0)..=at(2014.0)].iter().sum::<f64>() / 10.0;
    assert!((d[3] - 0.8 * aer_mean).abs() < 1e-12);
    let h = out.get("Ocean Heat Content").unwrap();
    assert!((d[4] - (h[at(2018.0)] - h[at(1971.0)])).abs() < 1e-9);
    // Plausible values for these parameters (AR6: 1971–2018 ocean heat gain 396 ZJ).
    assert!(d[2] > 0.8 && d[2] < 1.8, "warming {}", d[2]);
    assert!(d[4] > 200.0 && d[4] < 700.0, "OHU {}", d[4]);
    // The batch helper gives the same values in order.
    let b = derived::compute_batch(&m, &[x.to_vec(), x.to_vec()]);
    assert_eq!(b[1].as_ref().unwrap(), &d);
    // Bad parameters are an error, not NaNs.
    assert!(derived::compute(&m, &[-1.0, 8.0, 100.0, 0.6, 1.2, 0.8, 1.0]).is_err());
}

/// A small calibration of the historical model: the derived quantities stored with
/// each sample are exactly those of the stored parameters.
fn small_problem(derived_on: bool, blobs: bool) -> Posterior {
    let hist = Forcing::from_csv(&data("ERF_best_aggregates_1750-2024.csv"), &Default::default(), None).unwrap();
    let m = TwoLayerModel::builder(hist).feedback(Feedback::Lambda).fix("nonaerosol_scale", 1.0).build().unwrap();
    let params = ParameterSet::new()
        .add("lambda", Uniform::new(0.6, 2.0).unwrap())
        .unwrap()
        .add("C", Uniform::new(6.0, 10.0).unwrap())
        .unwrap()
        .add("C_d", Uniform::new(60.0, 140.0).unwrap())
        .unwrap()
        .add("gamma", Uniform::new(0.4, 0.9).unwrap())
        .unwrap()
        .add("epsilon", Uniform::new(0.9, 1.5).unwrap())
        .unwrap()
        .add("aerosol_scale", Uniform::new(0.5, 1.5).unwrap())
        .unwrap();
    let years: Vec<f64> = (1850..=2020).step_by(10).map(f64::from).collect();
    let obs: Vec<f64> = years.iter().map(|y| 1.1 * ((y - 1850.0) / 170.0).powi(2)).collect();
    let target = Target::new()
        .add_variable("Surface Temperature", years.clone(), obs, vec![0.1; years.len()])
        .unwrap()
        .with_reference_period(1850.0, 1900.0)
        .unwrap();
    Posterior::new(params, target, Arc::new(m), Arc::new(GaussianLikelihood::default()))
        .unwrap()
        .with_blobs(blobs)
        .with_derived(derived_on)
}

#[test]
fn a_calibration_stores_the_derived_quantities_of_its_samples() {
    for blobs in [false, true] {
        let post = small_problem(true, blobs);
        let n_obs = if blobs { 18 } else { 0 };
        assert_eq!(post.n_blobs(), n_obs + 5);
        let s = EnsembleSampler::new(post.clone(), 7).with_n_walkers(16).unwrap();
        let mut st = s.initialize(InitMethod::Prior).unwrap();
        let chain = s.run(&mut st, 30, &RunOptions::default()).unwrap();
        assert_eq!(chain.n_blobs(), n_obs + 5);
        let meta = climcal::storage::ChainMeta {
            derived_names: post.derived_quantities().into_iter().map(|q| q.name).collect(),
            ..Default::default()
        };
        let t = DerivedTable::from_chain(&chain, &meta, 0).unwrap();
        let flat = chain.flat_samples(0);
        assert_eq!(t.n_samples(), flat.nrows());
        for (i, row) in flat.rows().into_iter().enumerate() {
            let want = derived::compute(&**post.runner(), &post.model_params(row.as_slice().unwrap())).unwrap();
            assert_eq!(&t.values[i * 5..(i + 1) * 5], &want[..], "sample {i}");
        }
        // The stored derived chain gives diagnostics like any chain.
        let dc = DerivedTable::chain_of(&chain, &meta).unwrap();
        assert_eq!(dc.names()[0], "ECS");
        assert_eq!(dc.flat_samples(0).column(0).to_vec(), t.column(0));
    }
    // Off: nothing stored, the same chain.
    let off = small_problem(false, false);
    assert_eq!(off.n_blobs(), 0);
    assert!(off.derived_quantities().is_empty());
    let on = small_problem(true, false);
    let run = |p: Posterior| {
        let s = EnsembleSampler::new(p, 7).with_n_walkers(16).unwrap();
        let mut st = s.initialize(InitMethod::Prior).unwrap();
        s.run(&mut st, 20, &RunOptions::default()).unwrap()
    };
    assert_eq!(run(off).samples_raw(), run(on).samples_raw());
}

#[cfg(feature = "hdf5")]
#[test]
fn run_files_store_derived_quantities_with_names_and_units() {
    use climcal::config::RunConfig;
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(data("../two-layer-hadcrut5.toml")).unwrap();
    let cfg = RunConfig::from_toml_str(&text, data("..")).unwrap();
    let problem = cfg.build_problem().unwrap();
    let post = problem.posterior.clone().unwrap();
    let q = post.derived_quantities();
    assert_eq!(q.len(), 5);
    let s = cfg.sampler(&problem, 3, Arc::new(SerialExecutor)).unwrap();
    let mut st = problem.initial_state(&s).unwrap();
    let chain = s.run(&mut st, 4, &RunOptions { thin: 1, ..cfg.run_options() }).unwrap();
    let meta = climcal::storage::ChainMeta {
        derived_names: q.iter().map(|q| q.name.clone()).collect(),
        derived_units: q.iter().map(|q| q.unit.clone()).collect(),
        derived_descriptions: q.iter().map(|q| q.description.clone()).collect(),
        ..climcal::storage::ChainMeta::for_density(&post, 3, 1)
    };
    let path = dir.path().join("c.h5");
    climcal::storage::write_chain(&path, &chain, Some(&meta)).unwrap();
    let (back, m) = climcal::storage::read_chain(&path).unwrap();
    let m = m.unwrap();
    assert_eq!(m.derived_names, meta.derived_names);
    assert_eq!(m.derived_units, ["K", "K", "K", "W m-2", "ZJ"]);
    assert_eq!(DerivedTable::from_chain(&back, &m, 0), DerivedTable::from_chain(&chain, &meta, 0));
}
