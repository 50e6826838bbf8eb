//! The AR(1) residual likelihood from a run file: fixed and sampled ρ, σ_extra, and
//! the bad-input messages. (The O(n) formula against a dense multivariate normal is
//! the unit test in src/likelihood/ar1.rs.)
//!
//! Run: `cargo test --no-default-features --test ar1`

use std::path::Path;

use climcal::config::RunConfig;
use climcal::density::LogDensity;

fn cfg(extra_params: &str, likelihood: &str) -> climcal::Result<climcal::config::Problem> {
    let text = format!(
        r#"
[parameters.intercept]
prior = {{ dist = "normal", mean = 0.0, std = 5.0 }}
[parameters.slope]
prior = {{ dist = "uniform", lower = -1.0, upper = 2.0 }}
{extra_params}
[model]
name = "linear"
options = {{ t_start = 0, t_end = 20 }}
[target.variables.y]
file = "toy_linear.csv"
column = "y"
sigma = "y_sigma"
[likelihood]
{likelihood}
"#
    );
    RunConfig::from_toml_str(&text, Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"))?.build_problem()
}

#[test]
fn ar1_from_run_files() {
    let x = [0.3, 0.9];
    let gauss = cfg("", "kind = \"gaussian\"").unwrap();
    let zero = cfg("", "kind = \"ar1\"\nrho = 0.0").unwrap();
    let lp = |p: &climcal::config::Problem, x: &[f64]| {
        let mut u = vec![0.0; x.len()];
        p.density.to_sampler(x, &mut u);
        p.density.ln_prob(&u)
    };
    // ρ = 0: the independent likelihood.
    assert!((lp(&gauss, &x) - lp(&zero, &x)).abs() < 1e-10);
    let fixed = cfg("", "kind = \"ar1\"\nrho = 0.6\nsigma_extra = 0.05").unwrap();
    assert!(lp(&fixed, &x).is_finite() && (lp(&fixed, &x) - lp(&gauss, &x)).abs() > 1e-3);
    // Sampled ρ: a parameter like any other; at ρ = 0.6 the likelihood equals the
    // fixed one (the priors differ by the uniform density ln(1/0.95)).
    let sampled = cfg(
        "[parameters.rho]\nprior = { dist = \"uniform\", lower = 0.0, upper = 0.95 }\ntransform = \"logit\"",
        "kind = \"ar1\"\nsigma_extra = 0.05\n[likelihood.variables.y]\nrho = \"rho\"",
    )
    .unwrap();
    assert_eq!(sampled.names, ["intercept", "slope", "rho"]);
    let post = sampled.posterior.as_ref().unwrap();
    let post_fixed = fixed.posterior.as_ref().unwrap();
    let ll_s = post.ln_likelihood(&[0.3, 0.9, 0.6]);
    let ll_f = post_fixed.ln_likelihood(&x);
    assert!((ll_s - ll_f).abs() < 1e-12, "{ll_s} vs {ll_f}");
}

#[test]
fn ar1_bad_input_names_the_problem() {
    let err = |p: &str, l: &str| cfg(p, l).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err("", "kind = \"gaussian\"\nrho = 0.5").contains("kind = \"ar1\""));
    assert!(err("", "kind = \"ar1\"\nrho = 1.0").contains("rho"));
    assert!(err("", "kind = \"ar1\"\nrho = \"rho\"").contains("no prior is given"));
    assert!(err("", "kind = \"ar1\"\n[likelihood.variables.T]\nrho = 0.5").contains("not target variables"));
    assert!(err("", "kind = \"ar2\"").contains("gaussian, ar1"));
    // A parameter that neither the model nor the likelihood takes.
    assert!(err("[parameters.rho]\nprior = { dist = \"uniform\", lower = 0.0, upper = 0.9 }", "kind = \"ar1\"")
        .contains("not a parameter of the model or the likelihood"));
}
