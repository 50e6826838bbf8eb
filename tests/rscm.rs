//! RSCM models in-process (feature `rscm`): the adapter's outputs against values
//! computed independently of RSCM (the one-box carbon cycle's analytic response to
//! constant emissions, the CO₂ ERF logarithmic law), injected parameters really
//! reach the components, TOML and JSON model files give the same outputs bit for
//! bit, and every bad parameter path or output is an error at start-up naming it
//! and listing what exists.
#![cfg(feature = "rscm")]

use climcal::models::rscm::{carbon_cycle_erf_model, ParameterPath, RscmRunner};
use climcal::runner::ModelRunner;
use indexmap::IndexMap;

const E: f64 = 10.0; // GtC/yr, constant
const GTC_PER_PPM: f64 = 2.13; // RSCM's conversion (rscm_components::constants)
const C0: f64 = 278.0;

fn years() -> Vec<f64> {
    (1850..=2000).map(f64::from).collect()
}

fn model_text() -> String {
    let y = years();
    carbon_cycle_erf_model(&y, &vec![E; y.len()], 50.0, 3.9).unwrap()
}

fn map(entries: &[(&str, &str, &str)]) -> IndexMap<String, ParameterPath> {
    entries
        .iter()
        .map(|(n, c, p)| (n.to_string(), ParameterPath { component: c.to_string(), parameter: p.to_string(), index: None }))
        .collect()
}

fn outputs() -> Vec<(String, String)> {
    vec![("co2".into(), "Atmospheric Concentration|CO2".into()), ("erf".into(), "Effective Radiative Forcing|CO2".into())]
}

fn runner(text: &str) -> RscmRunner {
    RscmRunner::new(text, &map(&[("tau", "CarbonCycle", "tau"), ("f2x", "CO2ERF", "erf_2xco2")]), &outputs()).unwrap()
}

#[test]
fn outputs_follow_the_analytic_carbon_response_and_the_log_law() {
    let r = runner(&model_text());
    // Not the file's values (50, 3.9): the injected ones must reach the components.
    let (tau, f2x) = (30.0, 4.2);
    let out = r.run(&[tau, f2x]).unwrap();
    assert_eq!(out.times(), years().as_slice());
    let c = out.get("co2").unwrap();
    let erf = out.get("erf").unwrap();
    // dC/dt = E/k − (C − C0)/τ from C(1850) = C0: C = C0 + (E/k) τ (1 − e^{−(t−1850)/τ}).
    // RSCM integrates with RK4 at 0.1 yr: its error is ~1e-9 relative, far below 1e-7.
    for (i, (&t, &ci)) in years().iter().zip(c).enumerate() {
        let exact = C0 + E / GTC_PER_PPM * tau * (1.0 - (-(t - 1850.0) / tau).exp());
        assert!(((ci - exact) / exact).abs() < 1e-7, "year {t} (index {i}): RSCM {ci}, analytic {exact}");
    }
    // A model at τ = 60 holds more CO₂: the parameter changes the answer.
    let c60 = r.run(&[60.0, f2x]).unwrap().get("co2").unwrap().to_vec();
    assert!(c60[150] > c[150] + 50.0, "{} vs {}", c60[150], c[150]);
    // ERF = F2x / ln 2 · ln(C/C0), from the concentration of the same step
    // (RSCM's CO2ERF reads the concentration at the start of the step).
    let lag = erf_lag(c, erf, f2x);
    let mut checked = 0;
    for i in lag..c.len() {
        if erf[i].is_nan() {
            continue;
        }
        let exact = f2x / 2f64.ln() * (c[i - lag] / C0).ln();
        assert!((erf[i] - exact).abs() < 1e-12 * exact.abs().max(1.0), "index {i}: {} vs {exact}", erf[i]);
        checked += 1;
    }
    assert!(checked >= 149, "only {checked} ERF values checked");
}

/// Which concentration a step's ERF uses (0: the same index, 1: the previous one),
/// decided from the middle of the run, where the two differ by ~1e-3.
fn erf_lag(c: &[f64], erf: &[f64], f2x: f64) -> usize {
    let law = |x: f64| f2x / 2f64.ln() * (x / C0).ln();
    let i = 75;
    if (erf[i] - law(c[i])).abs() < 1e-9 {
        0
    } else {
        assert!(
            (erf[i] - law(c[i - 1])).abs() < 1e-9,
            "ERF follows neither C[i] nor C[i-1]: {} vs {} / {}",
            erf[i],
            law(c[i]),
            law(c[i - 1])
        );
        1
    }
}

#[test]
fn json_and_toml_model_files_give_the_same_outputs() {
    let toml_text = model_text();
    let model: rscm_core::model::Model = toml::from_str(&toml_text).unwrap();
    let json_text = serde_json::to_string_pretty(&model).unwrap();
    assert!(json_text.contains("null"), "NaN is written as null in RSCM's JSON");
    let a = runner(&toml_text).run(&[33.0, 3.7]).unwrap();
    let b = runner(&json_text).run(&[33.0, 3.7]).unwrap();
    for name in ["co2", "erf"] {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(a.get(name).unwrap()), bits(b.get(name).unwrap()), "{name}");
    }
}

#[test]
fn bad_paths_and_outputs_are_named_with_what_exists() {
    let text = model_text();
    let err = |params: &[(&str, &str, &str)], outs: &[(String, String)]| {
        RscmRunner::new(&text, &map(params), outs).unwrap_err().to_string()
    };
    let e = err(&[("tau", "TwoLayer", "lambda0")], &outputs());
    assert!(e.contains("'tau'") && e.contains("TwoLayer.lambda0") && e.contains("CarbonCycle") && e.contains("CO2ERF"), "{e}");
    let e = err(&[("tau", "CarbonCycle", "taux")], &outputs());
    assert!(
        e.contains("CarbonCycle.taux") && e.contains("alpha_temperature, conc_pi, tau") && e.contains("solver_options"),
        "{e}"
    );
    // A nested setting is reachable by its dotted path.
    RscmRunner::new(&text, &map(&[("h", "CarbonCycle", "solver_options.step_size")]), &outputs()).unwrap();
    let e = err(&[("tau", "CarbonCycle", "tau")], &[("t".into(), "Surface Temp".into())]);
    assert!(
        e.contains("'Surface Temp'") && e.contains("Atmospheric Concentration|CO2") && e.contains("Surface Temperature"),
        "{e}"
    );
    let e = RscmRunner::new("not a model = [", &map(&[]), &outputs()).unwrap_err().to_string();
    assert!(e.contains("TOML"), "{e}");
}

#[test]
fn a_model_saved_after_running_is_refused() {
    let mut model: rscm_core::model::Model = toml::from_str(&model_text()).unwrap();
    model.step();
    let e = RscmRunner::new(&toml::to_string(&model).unwrap(), &map(&[("tau", "CarbonCycle", "tau")]), &outputs())
        .unwrap_err()
        .to_string();
    assert!(e.contains("time_index = 1"), "{e}");
}
