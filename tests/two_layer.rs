//! Correctness of the two-layer energy-balance model (`src/models/two_layer.rs`):
//! analytic step response, energy conservation, a few steps against an independent
//! integrator, published CMIP6 fits, forcing files and options.
//!
//! Run: `cargo test --no-default-features --test two_layer`

use std::path::{Path, PathBuf};

use climcal::models::two_layer::{
    Feedback, Forcing, ForcingColumns, TimeConvention, TwoLayerModel, TwoLayerParams, F2X_AR6, ZJ_PER_W_YR_M2,
};
use climcal::runner::ModelRunner;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-examples/data").join(name)
}

/// Geoffroy et al. (2013b, J. Climate 26, 1859, eqs. for the model with efficacy):
/// time scales, amplitudes and deep-layer factors, written independently of the model code.
struct Geoffroy {
    tau_f: f64,
    tau_s: f64,
    a_f: f64,
    a_s: f64,
    phi_f: f64,
    phi_s: f64,
}

fn geoffroy(p: &TwoLayerParams) -> Geoffroy {
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
    Geoffroy { tau_f, tau_s, a_f, a_s, phi_f, phi_s }
}

/// CMIP6-like parameters (the table's MRI-ESM2-0 row, rounded).
fn mri() -> TwoLayerParams {
    TwoLayerParams { lambda: 1.2, c: 8.48, c_d: 98.2, gamma: 0.856, epsilon: 1.477 }
}

fn lambda_model(forcing: Forcing, conv: TimeConvention) -> TwoLayerModel {
    TwoLayerModel::builder(forcing).feedback(Feedback::Lambda).time_convention(conv).build().unwrap()
}

fn vec_of(p: &TwoLayerParams) -> Vec<f64> {
    vec![p.lambda, p.c, p.c_d, p.gamma, p.epsilon]
}

#[test]
fn step_response_matches_geoffroy_analytic_solution() {
    let p = mri();
    let f = 7.8;
    let g = geoffroy(&p);
    // Both time scales are present and well separated.
    assert!(g.tau_f > 1.0 && g.tau_f < 10.0 && g.tau_s > 100.0, "{} {}", g.tau_f, g.tau_s);
    let n = 300;
    let teq = f / p.lambda;
    let t_an = |t: f64| teq * (1.0 - g.a_f * (-t / g.tau_f).exp() - g.a_s * (-t / g.tau_s).exp());
    let td_an = |t: f64| teq * (1.0 - g.phi_f * g.a_f * (-t / g.tau_f).exp() - g.phi_s * g.a_s * (-t / g.tau_s).exp());
    // ∫_y^{y+1} T dt, exactly.
    let ex = |tau: f64, y: f64| tau * ((-y / tau).exp() - (-(y + 1.0) / tau).exp());
    let tmean_an = |y: f64| teq * (1.0 - g.a_f * ex(g.tau_f, y) - g.a_s * ex(g.tau_s, y));

    let end = lambda_model(Forcing::constant(f, 0.0, n).unwrap(), TimeConvention::EndOfYear);
    let out = end.run(&vec_of(&p)).unwrap();
    let t = out.get("Surface Temperature").unwrap();
    let h = out.get("Ocean Heat Content").unwrap();
    for y in 0..n {
        let tt = (y + 1) as f64;
        // Exact solution vs closed form: only rounding differs (relative 1e-10 is
        // ~1e5 ulp, generous for ~300 multiply-adds).
        assert!((t[y] - t_an(tt)).abs() < 1e-10 * teq, "year {y}: {} vs {}", t[y], t_an(tt));
        let td = (h[y] / ZJ_PER_W_YR_M2 - p.c * t[y]) / p.c_d;
        assert!((td - td_an(tt)).abs() < 1e-9 * teq, "deep year {y}: {td} vs {}", td_an(tt));
    }
    let mean = lambda_model(Forcing::constant(f, 0.0, n).unwrap(), TimeConvention::AnnualMean);
    let tm = mean.run(&vec_of(&p)).unwrap().get("Surface Temperature").unwrap().to_vec();
    for (y, v) in tm.iter().enumerate() {
        assert!((v - tmean_an(y as f64)).abs() < 1e-10 * teq, "mean year {y}: {v} vs {}", tmean_an(y as f64));
    }
    // The fast mode dominates year 1, the slow one the centuries.
    // (MRI: τ_f ≈ 3.4 yr, τ_s ≈ 240 yr, a_f ≈ 0.47): ~12 % after one year, the fast
    // half done after 20 years, the slow half far from done after 300.
    assert!(t[0] > 0.05 * teq && t[0] < 0.25 * teq, "{}", t[0] / teq);
    assert!(t[19] > 0.4 * teq && t[19] < 0.6 * teq, "{}", t[19] / teq);
    assert!(t[n - 1] > 0.7 * teq && t[n - 1] < 0.9 * teq, "{}", t[n - 1] / teq);
    // modes() agrees with Geoffroy's formulas.
    let m = p.modes();
    for (a, b) in [(m.tau_f, g.tau_f), (m.tau_s, g.tau_s), (m.a_f, g.a_f), (m.a_s, g.a_s)] {
        assert!((a - b).abs() < 1e-10 * b.abs(), "{a} vs {b}");
    }
    assert!((m.a_f + m.a_s - 1.0).abs() < 1e-12);
}

#[test]
fn equilibrium_is_f_over_lambda() {
    for p in [mri(), TwoLayerParams { lambda: 0.5, c: 3.0, c_d: 300.0, gamma: 0.3, epsilon: 0.8 }] {
        let model = lambda_model(Forcing::constant(3.93, 0.0, 20_000).unwrap(), TimeConvention::EndOfYear);
        let out = model.run(&vec_of(&p)).unwrap();
        let t = *out.get("Surface Temperature").unwrap().last().unwrap();
        let n = *out.get("Net Energy Imbalance").unwrap().last().unwrap();
        // e^{-20000/τ_s} with τ_s < 2000 yr is < 5e-5; T_eq = F/λ.
        assert!((t - 3.93 / p.lambda).abs() < 1e-3 * t, "{t} vs {}", 3.93 / p.lambda);
        assert!(n.abs() < 1e-3, "N at equilibrium {n}");
    }
}

/// d/dt (C T + C_d T_d) = N exactly, so the heat gained over year y (end-of-year
/// states) equals the annual-mean imbalance of year y, for any forcing.
#[test]
fn energy_is_conserved_with_historical_forcing() {
    let forcing = Forcing::from_csv(&data("ERF_best_aggregates_1750-2024.csv"), &ForcingColumns::default(), None).unwrap();
    let params = [2.0, 0.8, 7.0, 120.0, 0.7, 1.4, 1.3, 0.9]; // lambda, C, C_d, γ, ε, aer, nonaer (8 > 7: checked below)
    let mean = TwoLayerModel::builder(forcing.clone()).feedback(Feedback::Lambda).build().unwrap();
    assert_eq!(mean.param_names(), ["lambda", "C", "C_d", "gamma", "epsilon", "aerosol_scale", "nonaerosol_scale"]);
    assert!(mean.run(&params).is_err(), "a wrong-length vector must be an error");
    let p = &params[1..];
    let end = TwoLayerModel::builder(forcing.clone())
        .feedback(Feedback::Lambda)
        .time_convention(TimeConvention::EndOfYear)
        .build()
        .unwrap();
    let nbar = mean.run(p).unwrap().get("Net Energy Imbalance").unwrap().to_vec();
    let h_end = end.run(p).unwrap().get("Ocean Heat Content").unwrap().to_vec();
    let mut prev = 0.0;
    for y in 0..forcing.len() {
        let gained = (h_end[y] - prev) / ZJ_PER_W_YR_M2;
        assert!((gained - nbar[y]).abs() < 1e-11, "year {}: ΔH {gained} vs N {}", forcing.years()[y], nbar[y]);
        prev = h_end[y];
    }
    // Integrated: forcing in minus outgoing λT minus efficacy term = heat content.
    let total: f64 = nbar.iter().sum();
    assert!((total - h_end.last().unwrap() / ZJ_PER_W_YR_M2).abs() < 1e-9);
    // And with ε = 1, N = F − λ T.
    let f = forcing.total(1.3, 0.9);
    let out = mean.run(&[0.8, 7.0, 120.0, 0.7, 1.0, 1.3, 0.9]).unwrap();
    let (t, n) = (out.get("Surface Temperature").unwrap(), out.get("Net Energy Imbalance").unwrap());
    for y in 0..f.len() {
        assert!((n[y] - (f[y] - 0.8 * t[y])).abs() < 1e-12);
    }
}

/// The first years against an independent integrator: classical RK4 with dt = 1/1000 yr
/// on the ODEs as written (error ~ dt⁴ · |A|⁵ ≈ 1e-12 relative).
#[test]
fn first_steps_match_independent_integration() {
    let p = TwoLayerParams { lambda: 1.1, c: 6.0, c_d: 90.0, gamma: 0.7, epsilon: 1.3 };
    let fvals = [1.0, 3.0, -2.0, 0.5, 4.0];
    let years: Vec<f64> = (0..5).map(|i| 2000.0 + i as f64).collect();
    let forcing = Forcing::from_components(years, fvals.to_vec(), vec![0.0; 5], vec![0.0; 5]).unwrap();
    let deriv = |x: [f64; 2], f: f64| {
        [(f - p.lambda * x[0] - p.epsilon * p.gamma * (x[0] - x[1])) / p.c, p.gamma * (x[0] - x[1]) / p.c_d]
    };
    let (mut x, steps) = ([0.0f64; 2], 1000);
    let dt = 1.0 / steps as f64;
    let mut ends = Vec::new();
    let mut means = Vec::new();
    for &f in &fvals {
        let mut acc = 0.0;
        for _ in 0..steps {
            let k1 = deriv(x, f);
            let k2 = deriv([x[0] + 0.5 * dt * k1[0], x[1] + 0.5 * dt * k1[1]], f);
            let k3 = deriv([x[0] + 0.5 * dt * k2[0], x[1] + 0.5 * dt * k2[1]], f);
            let k4 = deriv([x[0] + dt * k3[0], x[1] + dt * k3[1]], f);
            let xn = [
                x[0] + dt / 6.0 * (k1[0] + 2.0 * k2[0] + 2.0 * k3[0] + k4[0]),
                x[1] + dt / 6.0 * (k1[1] + 2.0 * k2[1] + 2.0 * k3[1] + k4[1]),
            ];
            acc += 0.5 * dt * (x[0] + xn[0]); // trapezoid mean: error dt²/12·|T''| ≲ 1e-7
            x = xn;
        }
        ends.push(x[0]);
        means.push(acc);
    }
    let params = [1.0, p.c, p.c_d, p.gamma, p.epsilon, 1.0, 1.0];
    let m = TwoLayerModel::builder(forcing.clone()).feedback(Feedback::Lambda).fix("lambda", p.lambda);
    let end = m.clone().time_convention(TimeConvention::EndOfYear).build().unwrap();
    let mean = m.build().unwrap();
    let te = end.run(&params[1..]).unwrap().get("Surface Temperature").unwrap().to_vec();
    let tm = mean.run(&params[1..]).unwrap().get("Surface Temperature").unwrap().to_vec();
    for y in 0..5 {
        assert!((te[y] - ends[y]).abs() < 1e-10, "end {y}: {} vs {}", te[y], ends[y]);
        assert!((tm[y] - means[y]).abs() < 1e-6, "mean {y}: {} vs {}", tm[y], means[y]);
    }
    // By hand, with the layers decoupled (γ = 0): T(1) = F/λ (1 − e^{−λ/C}),
    // T(2) = T(1) e^{−λ/C} + 3/λ (1 − e^{−λ/C}).
    let dec = TwoLayerModel::builder(forcing)
        .feedback(Feedback::Lambda)
        .time_convention(TimeConvention::EndOfYear)
        .fix("gamma", 0.0)
        .build()
        .unwrap();
    let t = dec.run(&[1.1, 6.0, 90.0, 1.3, 1.0, 1.0]).unwrap().get("Surface Temperature").unwrap().to_vec();
    let d = (-1.1f64 / 6.0).exp();
    let t1 = 1.0 / 1.1 * (1.0 - d);
    assert!((t[0] - t1).abs() < 1e-14);
    assert!((t[1] - (t1 * d + 3.0 / 1.1 * (1.0 - d))).abs() < 1e-14);
}

struct Tuning {
    name: String,
    q4x: f64,
    p: TwoLayerParams,
    tau1: f64,
    tau2: f64,
    a1: f64,
    a2: f64,
}

fn tunings() -> Vec<Tuning> {
    let mut rdr = csv::Reader::from_path(data("cmip6_twolayer_tuning_params.csv")).unwrap();
    let h: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    let c = |n: &str| h.iter().position(|x| x == n).unwrap();
    let mut out = Vec::new();
    for r in rdr.records() {
        let r = r.unwrap();
        let g = |n: &str| r[c(n)].parse::<f64>().unwrap();
        if &r[0] == "Mean" || &r[0] == "StDev" {
            continue;
        }
        out.push(Tuning {
            name: r[0].to_string(),
            q4x: g("q4x"),
            p: TwoLayerParams { lambda: -g("lamg"), c: g("cmix"), c_d: g("cdeep"), gamma: g("gamma_2l"), epsilon: g("eff") },
            tau1: g("tau1"),
            tau2: g("tau2"),
            a1: g("a1"),
            a2: g("a2"),
        });
    }
    out
}

/// The AR6 table lists each fit's time scales and amplitudes next to its parameters;
/// our eigen-decomposition must reproduce them for all 35 models.
#[test]
fn modes_match_published_cmip6_fits() {
    let t = tunings();
    assert_eq!(t.len(), 35);
    for m in &t {
        let md = m.p.modes();
        for (what, a, b) in [("tau1", md.tau_f, m.tau1), ("tau2", md.tau_s, m.tau2), ("a1", md.a_f, m.a1), ("a2", md.a_s, m.a2)] {
            // The table was computed from the same parameters in double precision.
            assert!((a - b).abs() < 1e-8 * b.abs(), "{}: {what} {a} vs published {b}", m.name);
        }
    }
}

fn abrupt(model: &str) -> (Vec<f64>, Vec<f64>) {
    let dir = data("cmip6_abrupt-4xCO2");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{model}_")))
        .unwrap();
    let mut rdr = csv::Reader::from_path(file).unwrap();
    let (mut t, mut n) = (Vec::new(), Vec::new());
    for r in rdr.records().take(150) {
        let r = r.unwrap();
        let g = |i: usize| r[i].parse::<f64>().unwrap();
        t.push(g(1));
        n.push(g(4) - g(3) - g(2));
    }
    (t, n)
}

fn rms(a: &[f64], b: &[f64]) -> f64 {
    (a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
}

/// The published fits, run through our model, reproduce each CMIP6 model's own
/// abrupt-4xCO2 temperature and imbalance to within its internal variability
/// (year-to-year noise ≈ 0.1–0.15 K and 0.3–0.5 W m⁻²; bounds are 2–3× that).
#[test]
fn published_fits_reproduce_abrupt_4xco2_runs() {
    let t = tunings();
    for name in ["MRI-ESM2-0", "GFDL-CM4", "CanESM5"] {
        let tu = t.iter().find(|x| x.name == name).unwrap();
        let (tas, n_obs) = abrupt(name);
        let model = lambda_model(Forcing::constant(tu.q4x, 0.0, 150).unwrap(), TimeConvention::AnnualMean);
        let out = model.run(&vec_of(&tu.p)).unwrap();
        let rt = rms(out.get("Surface Temperature").unwrap(), &tas);
        let rn = rms(out.get("Net Energy Imbalance").unwrap(), &n_obs);
        eprintln!("{name}: RMS T {rt:.3} K, RMS N {rn:.3} W m-2");
        assert!(rt < 0.35, "{name}: RMS T {rt}");
        assert!(rn < 0.9, "{name}: RMS N {rn}");
    }
}

#[test]
fn forcing_files_load_and_split() {
    let f = Forcing::from_csv(&data("ERF_best_aggregates_1750-2024.csv"), &ForcingColumns::default(), None).unwrap();
    assert_eq!(f.len(), 275);
    assert_eq!(f.years()[0], 1750.0);
    assert_eq!(*f.years().last().unwrap(), 2024.0);
    let tot = f.total(1.0, 1.0);
    assert!((tot[274] - 3.3028279001514402).abs() < 1e-12, "{}", tot[274]); // PROVENANCE: total 2024 = 3.303
    assert!((f.aerosol()[274] + 1.0662137729991152).abs() < 1e-12);
    // AR6 1750–2019 layout (`year` column; aggregate `aerosol`), restricted to 1850–2019.
    let g = Forcing::from_csv(&data("AR6_ERF_1750-2019.csv"), &ForcingColumns::default(), Some((1850.0, 2019.0))).unwrap();
    assert_eq!(g.len(), 170);
    assert!((g.total(1.0, 1.0)[169] - 2.838).abs() < 1e-3);
    assert!((g.aerosol()[169] + 1.058).abs() < 1e-3);
    // Bad column: the error names it and lists the columns.
    let cols = ForcingColumns { total: "tot".into(), ..Default::default() };
    let e = Forcing::from_csv(&data("AR6_ERF_1750-2019.csv"), &cols, None).unwrap_err().to_string();
    assert!(e.contains("'tot'") && e.contains("total_anthropogenic"), "{e}");
}

#[test]
fn options_build_models_and_reject_bad_input() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-examples");
    let t: toml::Table = toml::from_str(
        r#"
        feedback = "ecs"
        ocean_heat_fraction = 0.91
        fixed = { nonaerosol_scale = 1.0 }
        [forcing]
        file = "data/ERF_best_aggregates_1750-2024.csv"
        last_year = 2023
        "#,
    )
    .unwrap();
    let m = TwoLayerModel::from_options(&t, &base).unwrap();
    assert_eq!(m.param_names(), ["ecs", "C", "C_d", "gamma", "epsilon", "aerosol_scale"]);
    assert_eq!(m.forcing().len(), 274);
    let out = m.run(&[3.0, 8.0, 100.0, 0.6, 1.3, 1.0]).unwrap();
    let t2023 = out.get("Surface Temperature").unwrap()[273];
    assert!(t2023 > 0.8 && t2023 < 2.0, "{t2023}");

    let t: toml::Table = toml::from_str("feedback = \"lambda\"\nforcing = { constant = 7.8, n_years = 150 }").unwrap();
    let m = TwoLayerModel::from_options(&t, &base).unwrap();
    assert_eq!(m.param_names(), ["lambda", "C", "C_d", "gamma", "epsilon"]);
    assert_eq!(m.run(&[1.0, 8.0, 100.0, 0.6, 1.3]).unwrap().times()[149], 149.0);

    let bad = |s: &str, needle: &str| {
        let t: toml::Table = toml::from_str(s).unwrap();
        let e = TwoLayerModel::from_options(&t, &base).unwrap_err();
        assert!(e.is_bad_input());
        let e = e.to_string();
        assert!(e.contains(needle), "'{e}' should mention '{needle}'");
    };
    bad("forcing = { constant = 7.8, n_years = 150 }\nfeedbak = \"ecs\"", "'feedbak'");
    bad("forcing = { constant = 7.8, n_years = 150 }\nfixed = { aerosol_scale = 1.0 }", "aerosol_scale");
    bad("forcing = { constant = 7.8, n_years = 150 }\nfixed = { kappa = 1.0 }", "'kappa'");
    bad("forcing = { file = \"data/nope.csv\" }", "nope.csv");
    bad("forcing = { constant = 7.8 }", "n_years");
    bad("feedback = \"ecs\"", "[model.options.forcing]");
    bad("forcing = { constant = 7.8, n_years = 10 }\nocean_heat_fraction = 1.5", "ocean_heat_fraction");
}

#[test]
fn steps_and_ecs_parametrisation() {
    let f = Forcing::step(&[(5.0, 2.0), (10.0, -1.0)], 0.0, 15).unwrap();
    assert_eq!(f.total(1.0, 1.0), [0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0, 2.0, -1.0, -1.0, -1.0, -1.0, -1.0]);
    let by_ecs = TwoLayerModel::builder(f.clone()).build().unwrap();
    let by_lambda = TwoLayerModel::builder(f).feedback(Feedback::Lambda).build().unwrap();
    let a = by_ecs.run(&[3.0, 8.0, 100.0, 0.6, 1.3]).unwrap();
    let b = by_lambda.run(&[F2X_AR6 / 3.0, 8.0, 100.0, 0.6, 1.3]).unwrap();
    assert_eq!(a, b);
    // Nothing happens before the first step.
    assert!(a.get("Surface Temperature").unwrap()[..5].iter().all(|&v| v == 0.0));
    // Non-physical parameters are a model error (−∞ in a sampler), never a panic.
    assert!(by_ecs.run(&[-1.0, 8.0, 100.0, 0.6, 1.3]).is_err());
    assert!(by_ecs.run(&[3.0, 0.0, 100.0, 0.6, 1.3]).is_err());
    assert!(by_ecs.run(&[3.0, 8.0, 100.0, f64::NAN, 1.3]).is_err());
}

/// Stable for every draw: random parameters over (and beyond) any sensible prior
/// give finite output bounded by the equilibrium response.
#[test]
fn stable_for_extreme_parameters() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
    let model = lambda_model(Forcing::constant(4.0, 0.0, 500).unwrap(), TimeConvention::AnnualMean);
    for _ in 0..2000 {
        let lu = |rng: &mut rand_pcg::Pcg64, a: f64, b: f64| (rng.random_range(a.ln()..b.ln())).exp();
        let p = [
            lu(&mut rng, 0.05, 10.0),
            lu(&mut rng, 0.01, 200.0),
            lu(&mut rng, 0.1, 1e4),
            lu(&mut rng, 1e-4, 20.0),
            lu(&mut rng, 0.05, 5.0),
        ];
        let out = model.run(&p).unwrap();
        let t = out.get("Surface Temperature").unwrap();
        let teq = 4.0 / p[0];
        assert!(t.iter().all(|v| v.is_finite() && *v >= -1e-9 * teq && *v <= teq * (1.0 + 1e-9)), "{p:?}");
        // TCR is positive and below ECS.
        let pp = TwoLayerParams { lambda: p[0], c: p[1], c_d: p[2], gamma: p[3], epsilon: p[4] };
        let tcr = pp.tcr(F2X_AR6);
        assert!(tcr > 0.0 && tcr <= pp.ecs(F2X_AR6) * (1.0 + 1e-9), "{p:?}: tcr {tcr}");
    }
}

#[test]
fn tcr_of_cmip6_fits_is_plausible() {
    // Two-layer TCR for the CMIP6 mean fit: AR6 Table 7.SM.? lists CMIP6 TCR 1.3–2.8 K.
    for m in tunings() {
        let tcr = m.p.tcr(m.q4x / 2.0);
        let ecs = m.p.ecs(m.q4x / 2.0);
        assert!(tcr > 1.0 && tcr < 3.2 && tcr < ecs, "{}: TCR {tcr}, ECS {ecs}", m.name);
    }
}

/// The Gaussian likelihood sums ln σ² through running products; it must equal the
/// per-point formula even when the products would under- or overflow.
#[test]
fn gaussian_likelihood_normalisation_survives_extreme_sigmas() {
    use climcal::likelihood::{GaussianLikelihood, LikelihoodFn};
    use climcal::runner::ModelOutput;
    use climcal::target::Target;
    let n = 200;
    let times: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let model: Vec<f64> = times.iter().map(|t| (t * 0.1).sin()).collect();
    let obs: Vec<f64> = times.iter().map(|t| (t * 0.1).sin() + 1e-3 * (t * 1.7).cos()).collect();
    for sig in [|i: usize| if i % 2 == 0 { 1e-60 } else { 1e-3 }, |i: usize| if i < 100 { 1e70 } else { 1e-70 }, |_| 0.1] {
        let sigmas: Vec<f64> = (0..n).map(sig).collect();
        let out = ModelOutput::new(times.clone(), vec![("x".into(), model.clone())]).unwrap();
        let target = Target::new().add_variable("x", times.clone(), obs.clone(), sigmas.clone()).unwrap();
        let got = GaussianLikelihood::default().ln_likelihood(&out, &target);
        let want: f64 = (0..n)
            .map(|i| {
                let v = sigmas[i] * sigmas[i];
                -0.5 * ((model[i] - obs[i]).powi(2) / v + (2.0 * std::f64::consts::PI * v).ln())
            })
            .sum();
        assert!(got.is_finite() && (got - want).abs() <= 1e-9 * want.abs().max(1.0), "{got} vs {want}");
    }
}
