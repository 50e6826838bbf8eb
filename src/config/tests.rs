//! Unit tests of run-file parsing and resume comparison.

use super::*;

const GAUSS: &str = r#"
[model]
name = "gaussian"
options = { dim = 3 }

[sampler]
n_walkers = 8
n_steps = 10
seed = 1
init = { method = "ball", center = [0.0, 0.0, 0.0], radius = 0.1 }
"#;

#[test]
fn moves_are_read_and_checked() {
    let with = |m: &str| GAUSS.replace("seed = 1", &format!("seed = 1\nmoves = {m}"));
    let c = RunConfig::from_toml_str(&with(r#"[{ kind = "de", weight = 0.8 }, { kind = "de_snooker", weight = 0.2 }]"#), ".")
        .unwrap();
    let m = c.moves().unwrap().unwrap();
    assert_eq!(m.entries().len(), 2);
    assert_eq!(m.entries()[0].1, 0.8);
    let p = c.build_problem().unwrap();
    let s = c.sampler(&p, 1, Arc::new(crate::executor::SerialExecutor)).unwrap();
    assert_eq!(s.moves(), m);
    // Unknown kinds and keys, bad values and a conflicting stretch_scale name the cause.
    for (m, want) in [
        (r#"[{ kind = "snooker" }]"#, "snooker"),
        (r#"[{ kind = "de", gama0 = 1.0 }]"#, "gama0"),
        (r#"[{ kind = "gaussian", cov = [1.0, 1.0] }]"#, "2 variances for 3 parameters"),
        (r#"[{ kind = "de", weight = -1.0 }]"#, "weight"),
    ] {
        let c = RunConfig::from_toml_str(&with(m), ".").unwrap();
        let e = c.build_problem().err().expect(m);
        assert!(e.is_bad_input() && e.to_string().contains(want), "{m}: {e}");
    }
    let c =
        RunConfig::from_toml_str(&with(r#"[{ kind = "stretch" }]"#).replace("seed = 1", "seed = 1\nstretch_scale = 3.0"), ".")
            .unwrap();
    assert!(c.build_problem().err().unwrap().to_string().contains("stretch_scale and moves"));
}

#[test]
fn parses_a_density_run() {
    let c = RunConfig::from_toml_str(GAUSS, ".").unwrap();
    let p = c.build_problem().unwrap();
    assert_eq!(p.names, vec!["p0", "p1", "p2"]);
    assert_eq!(p.n_walkers, 8);
    let s = c.sampler(&p, 1, Arc::new(crate::executor::SerialExecutor)).unwrap();
    let st = p.initial_state(&s).unwrap();
    assert_eq!(st.positions.len(), 24);
}

#[test]
fn unknown_key_names_key_and_line() {
    let text = GAUSS.replace("n_steps = 10", "n_steps = 10\nn_stepz = 3");
    let e = RunConfig::from_toml_str(&text, ".").unwrap_err().to_string();
    assert!(e.contains("n_stepz") && e.contains("line 9"), "{e}");
    let text = GAUSS.replace("dim = 3", "dim = 3, wobble = 1");
    let e = RunConfig::from_toml_str(&text, ".").unwrap().build_problem().err().unwrap().to_string();
    assert!(e.contains("wobble") && e.contains("line 4"), "{e}");
}

#[test]
fn parameters_keep_file_order() {
    let text = r#"
[parameters.zeta]
prior = { dist = "normal", mean = 0.0, std = 1.0 }
[parameters.alpha]
prior = { dist = "uniform", lower = 0.0, upper = 1.0 }
transform = "logit"
[model]
name = "gaussian"
"#;
    let p = RunConfig::from_toml_str(text, ".").unwrap().build_problem().unwrap();
    assert_eq!(p.names, vec!["zeta", "alpha"]);
    assert_eq!(p.n_walkers, 32);
}

#[test]
fn bad_prior_and_init_are_named() {
    let text = r#"
[parameters.a]
prior = { dist = "normal", mean = 0.0, std = -1.0 }
[model]
name = "gaussian"
"#;
    let e = RunConfig::from_toml_str(text, ".").unwrap().build_problem().err().unwrap();
    assert!(e.is_bad_input());
    assert!(e.to_string().contains("'a'"), "{e}");
    let e = RunConfig::from_toml_str(&GAUSS.replace("init = {", "init = { bogus = 1,"), ".").unwrap_err().to_string();
    assert!(e.contains("bogus"), "{e}");
}

#[test]
fn resume_differences_ignore_output_and_steps() {
    let a = RunConfig::from_toml_str(GAUSS, ".").unwrap();
    let b =
        RunConfig::from_toml_str(&format!("{}\n[output]\npath = \"x.h5\"\n", GAUSS.replace("n_steps = 10", "n_steps = 99")), ".")
            .unwrap();
    assert!(a.resume_differences(&b).is_empty());
    let c = RunConfig::from_toml_str(&GAUSS.replace("dim = 3", "dim = 4"), ".").unwrap();
    assert_eq!(a.resume_differences(&c), vec!["model.options.dim"]);
}
