//! The `climcal` command line: every bad input of DESIGN.md exits with code 2, a
//! message naming the problem, and leaves existing files untouched; run → info →
//! resume work end to end.
#![cfg(feature = "hdf5")]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use climcal::sampler::Chain;
use climcal::storage::{read_chain, read_resume};
use tempfile::TempDir;

const GAUSS: &str = r#"
[parameters.a]
prior = { dist = "normal", mean = 0.0, std = 10.0 }
[parameters.b]
prior = { dist = "uniform", lower = -20.0, upper = 20.0 }

[model]
name = "gaussian"
options = { mean = [1.0, -2.0], std = [1.0, 2.0] }

[sampler]
n_walkers = 8
n_steps = 60
thin = 2
seed = 11

[output]
path = "out.h5"
checkpoint_every = 7
"#;

fn climcal() -> Command {
    Command::cargo_bin("climcal").unwrap()
}

struct Case {
    dir: TempDir,
}

impl Case {
    fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("run.toml"), config).unwrap();
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/toy_linear.csv");
        std::fs::copy(data, dir.path().join("toy_linear.csv")).unwrap();
        Self { dir }
    }
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.p(name), text).unwrap();
    }
    /// Run `climcal args…` in the case directory; (exit code, stderr).
    fn climcal(&self, args: &[&str]) -> (i32, String) {
        let out = climcal().current_dir(self.dir.path()).args(args).output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
    }
    /// A run that must fail as bad input, naming every `needles`, writing no chain file.
    fn bad_run(&self, needles: &[&str]) -> String {
        let (code, err) = self.climcal(&["run", "run.toml", "-q"]);
        assert_eq!(code, 2, "expected exit 2, got {code}: {err}");
        for n in needles {
            assert!(err.contains(n), "message should name {n:?}: {err}");
        }
        assert!(!self.p("out.h5").exists(), "a failed run must not leave a chain file");
        assert!(!self.p("out.h5.partial").exists());
        err
    }
}

/// A run file of tests/data, writing `out.h5`.
fn data_config(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name))
        .unwrap()
        .replace("[output]", "[output]\npath = \"out.h5\"")
}

fn linear_config() -> String {
    data_config("toy_linear.toml")
}

#[test]
fn unknown_keys_name_key_and_line() {
    let c = Case::new(&GAUSS.replace("thin = 2", "thin = 2\nn_walker = 8"));
    c.bad_run(&["n_walker", "line 15"]);
    let c = Case::new(&GAUSS.replace("[output]", "[outptu]"));
    c.bad_run(&["outptu"]);
    let c = Case::new(&GAUSS.replace("std = [1.0, 2.0] }", "std = [1.0, 2.0], sd = 1 }"));
    c.bad_run(&["sd", "line 9"]);
    let c = Case::new(&GAUSS.replace("std = 10.0 }", "std = 10.0, mena = 1 }"));
    c.bad_run(&["mena"]);
}

#[test]
fn invalid_priors_are_named() {
    let c = Case::new(&GAUSS.replace("std = 10.0", "std = 0.0"));
    c.bad_run(&["'a'", "σ"]);
    let c = Case::new(&GAUSS.replace("upper = 20.0", "upper = -30.0"));
    c.bad_run(&["'b'", "lower"]);
    let c = Case::new(&GAUSS.replace("dist = \"uniform\"", "dist = \"unifrom\""));
    c.bad_run(&["unifrom"]);
}

#[test]
fn bad_observations_are_named() {
    let c = Case::new(&linear_config());
    let csv = std::fs::read_to_string(c.p("toy_linear.csv")).unwrap();
    c.write("toy_linear.csv", &csv.replacen(",0.5\n", ",0.0\n", 3));
    c.bad_run(&["'y'", "uncertaint"]);
    c.write("toy_linear.csv", &csv.replacen(",0.5\n", ",-1\n", 1));
    c.bad_run(&["'y'", "uncertaint"]);
    c.write("toy_linear.csv", &csv.replacen(",0.5\n", ",inf\n", 1));
    c.bad_run(&["'y'"]);
    c.write("toy_linear.csv", &csv.replace("2,2.309049,0.5", "2,nan,0.5"));
    c.bad_run(&["'y'", "NaN"]);
    c.write("toy_linear.csv", &csv);
    c.write("run.toml", &linear_config().replace("sigma = \"y_sigma\"", "sigma = \"y_err\""));
    c.bad_run(&["y_err", "toy_linear.csv"]);
    c.write("run.toml", &linear_config().replace("toy_linear.csv", "missing.csv"));
    c.bad_run(&["missing.csv"]);
}

#[test]
fn mismatched_lengths_are_named() {
    let c = Case::new(&GAUSS.replace("mean = [1.0, -2.0]", "mean = [1.0, -2.0, 3.0]"));
    c.bad_run(&["length mismatch", "mean"]);
    let c = Case::new(&GAUSS.replace("seed = 11", "seed = 11\ninit = { method = \"ball\", center = [0.0], radius = 0.1 }"));
    c.bad_run(&["length mismatch", "center"]);
}

#[test]
fn initial_walkers_outside_the_prior_are_named() {
    // Centre outside the prior: caught before any model runs.
    let c = Case::new(
        &GAUSS.replace("seed = 11", "seed = 11\ninit = { method = \"ball\", center = { a = 0.0, b = 25.0 }, radius = 0.1 }"),
    );
    c.bad_run(&["b = 25", "outside"]);
    // Centre inside but a ball reaching outside: the walkers are named.
    let c = Case::new(
        &GAUSS.replace("seed = 11", "seed = 11\ninit = { method = \"ball\", center = { a = 0.0, b = 19.9 }, radius = 1.0 }"),
    );
    c.bad_run(&["initial walker", "walkers ["]);
}

#[test]
fn too_few_or_odd_walkers_are_errors() {
    let c = Case::new(&GAUSS.replace("n_walkers = 8", "n_walkers = 2"));
    c.bad_run(&["n_walkers = 2", "fewer than 2 × 2"]);
    let c = Case::new(&GAUSS.replace("n_walkers = 8", "n_walkers = 7"));
    c.bad_run(&["even"]);
}

#[test]
fn unknown_model_lists_known_ones() {
    let c = Case::new(&GAUSS.replace("name = \"gaussian\"", "name = \"gausian\""));
    c.bad_run(&["unknown model 'gausian'", "gaussian"]);
}

#[test]
fn existing_output_is_kept_without_force() {
    let c = Case::new(GAUSS);
    c.write("out.h5", "precious");
    let (code, err) = c.climcal(&["run", "run.toml", "-q"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("out.h5") && err.contains("--force") && err.contains("resume"), "{err}");
    assert_eq!(std::fs::read_to_string(c.p("out.h5")).unwrap(), "precious");
    let (code, err) = c.climcal(&["run", "run.toml", "-q", "-o", "no/such/dir.h5"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no/such") && err.contains("does not exist"), "{err}");
    let (code, err) = c.climcal(&["run", "run.toml", "-q", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(Chain::load(c.p("out.h5")).unwrap().n_rows(), 30);
}

#[test]
fn corrupt_or_truncated_files_are_bad_input() {
    let c = Case::new(GAUSS);
    assert_eq!(c.climcal(&["run", "run.toml", "-q"]).0, 0);
    let bytes = std::fs::read(c.p("out.h5")).unwrap();
    c.write("trunc.h5", "");
    std::fs::write(c.p("trunc.h5"), &bytes[..bytes.len() / 3]).unwrap();
    for cmd in ["info", "resume"] {
        let (code, err) =
            c.climcal(&[cmd, "trunc.h5", "-q"].iter().filter(|a| cmd == "resume" || **a != "-q").copied().collect::<Vec<_>>());
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(err.contains("trunc.h5") && (err.contains("corrupt") || err.contains("truncated")), "{cmd}: {err}");
    }
    c.write("text.h5", "not hdf5 at all");
    let (code, err) = c.climcal(&["info", "text.h5"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("text.h5"), "{err}");
    let (code, err) = c.climcal(&["info", "nope.h5"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nope.h5") && err.contains("does not exist"), "{err}");
}

fn digest(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn resume_refuses_a_different_config_or_changed_data() {
    let c = Case::new(&linear_config());
    let (code, err) = c.climcal(&["run", "run.toml", "-q", "--steps", "40"]);
    assert_eq!(code, 0, "{err}");
    let before = digest(&c.p("out.h5"));
    // A run file that differs in a prior.
    c.write("other.toml", &linear_config().replace("std = 5.0", "std = 6.0"));
    let (code, err) = c.climcal(&["resume", "out.h5", "--config", "other.toml", "--steps", "10", "-q"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("parameters.intercept.prior.std"), "{err}");
    // Only output and n_steps differ: allowed.
    c.write("same.toml", &linear_config().replace("n_steps = 300", "n_steps = 10"));
    // Changed data behind the stored run file.
    let csv = std::fs::read_to_string(c.p("toy_linear.csv")).unwrap();
    c.write("toy_linear.csv", &csv.replacen(",0.5\n", ",0.6\n", 1));
    let (code, err) = c.climcal(&["resume", "out.h5", "--steps", "10", "-q"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("target"), "{err}");
    assert_eq!(digest(&c.p("out.h5")), before, "a refused resume must leave the file untouched");
    c.write("toy_linear.csv", &csv);
    let (code, err) = c.climcal(&["resume", "out.h5", "--config", "same.toml", "--steps", "10", "-q"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(Chain::load(c.p("out.h5")).unwrap().n_steps(), 50);
}

#[test]
fn run_then_resume_equals_one_run() {
    let c = Case::new(&linear_config());
    assert_eq!(c.climcal(&["run", "run.toml", "-q", "--steps", "100", "-o", "full.h5"]).0, 0);
    assert_eq!(c.climcal(&["run", "run.toml", "-q", "--steps", "37", "-o", "part.h5", "--threads", "2"]).0, 0);
    assert_eq!(c.climcal(&["resume", "part.h5", "-q", "--steps", "63", "--threads", "1"]).0, 0);
    let (a, b) = (read_chain(&c.p("full.h5")).unwrap().0, read_chain(&c.p("part.h5")).unwrap().0);
    assert_eq!(a.samples_raw(), b.samples_raw());
    assert_eq!(a.ln_probs_raw(), b.ln_probs_raw());
    assert_eq!(a.blobs_raw(), b.blobs_raw());
    assert_eq!(a.n_blobs(), 21);
    assert_eq!(a.accepted(), b.accepted());
    assert_eq!(read_resume(&c.p("full.h5")).unwrap().state, read_resume(&c.p("part.h5")).unwrap().state);
    // resume with nothing left to do is a no-op
    let before = digest(&c.p("full.h5"));
    c.write("run.toml", &linear_config().replace("n_steps = 300", "n_steps = 100"));
    assert_eq!(c.climcal(&["run", "run.toml", "-q", "-o", "t.h5"]).0, 0);
    let (code, err) = c.climcal(&["resume", "t.h5", "-q"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(Chain::load(c.p("t.h5")).unwrap().n_steps(), 100);
    assert_eq!(digest(&c.p("full.h5")), before);
}

#[test]
fn info_prints_a_table_and_json() {
    let c = Case::new(GAUSS.replace("n_steps = 60", "n_steps = 400").as_str());
    assert_eq!(c.climcal(&["run", "run.toml", "-q"]).0, 0);
    let out = climcal().current_dir(c.dir.path()).args(["info", "out.h5"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for h in ["parameter", "mean", "R-hat", "ESS", "tau", "acceptance", "converged"] {
        assert!(text.contains(h), "{h}: {text}");
    }
    let out = climcal().current_dir(c.dir.path()).args(["info", "out.h5", "--json", "--discard", "50"]).output().unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["n_rows"], 200);
    assert_eq!(j["n_steps"], 400);
    assert_eq!(j["thin"], 2);
    assert_eq!(j["discard"], 50);
    let ps = j["parameters"].as_array().unwrap();
    assert_eq!(ps[0]["name"], "a");
    // Posterior: a ~ N(1, 1), b ~ N(-2, 2) (priors are wide). 150 rows × 8 walkers
    // with τ ≈ 10 rows gives ~120 effective draws: MCSE of the mean ≈ sd/11, so
    // 5·MCSE = 0.45 (a) and 0.9 (b).
    assert!((ps[0]["mean"].as_f64().unwrap() - 1.0).abs() < 0.45, "{j}");
    assert!((ps[1]["mean"].as_f64().unwrap() + 2.0).abs() < 0.9, "{j}");
    assert!(ps[0]["r_hat"].as_f64().unwrap() > 0.9);
    assert!(j["acceptance_mean"].as_f64().unwrap() > 0.2);
}

#[test]
fn until_converged_stops_early_and_example_configs_parse() {
    let c = Case::new(&GAUSS.replace("thin = 2", "thin = 1"));
    let (code, err) = c.climcal(&["run", "run.toml", "-q", "--steps", "50000", "--until-converged"]);
    assert_eq!(code, 0, "{err}");
    let chain = Chain::load(c.p("out.h5")).unwrap();
    let n = chain.n_steps();
    assert!(n < 50000 && n % 100 == 0, "stopped at {n}");
    // emcee's rule held when it stopped: N > 50 τ for every parameter.
    for t in chain.autocorr_time_quiet(0) {
        assert!(50.0 * t < n as f64, "τ = {t}, N = {n}");
    }
    for ex in ["toy-gaussian", "toy-rosenbrock", "toy-linear"] {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("cluster-examples/{ex}.toml"));
        climcal::config::RunConfig::load(&p).unwrap().build_problem().unwrap();
    }
}

/// An external program as the model (`[model] name = "command"`): parameters go in
/// as `name=value`, CSV comes out; where it hangs, the timeout kills it and the
/// evaluation counts as failed, so no sample is stored there and the run finishes.
#[cfg(unix)]
#[test]
fn command_model_with_a_timeout_calibrates_and_never_hangs() {
    // tests/data/toy_command.toml runs tests/data/toy_command_model.sh: the
    // `linear` model as a program, which hangs for intercept > 1.6 (inside the
    // posterior, outside the starting ball).
    let c = Case::new(&data_config("toy_command.toml"));
    // fs::copy keeps the executable bit.
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/toy_command_model.sh");
    std::fs::copy(model, c.p("toy_command_model.sh")).unwrap();
    let t0 = std::time::Instant::now();
    let (code, err) = c.climcal(&["run", "run.toml", "-q"]);
    assert_eq!(code, 0, "{err}");
    // 320 evaluations; every hang costs the 2 s timeout, not 30 s (a 0.5 s one
    // also cut short real runs of the script on a loaded machine).
    assert!(t0.elapsed() < std::time::Duration::from_secs(120), "{:?}", t0.elapsed());
    let chain = Chain::load(c.p("out.h5")).unwrap();
    assert!(chain.failures() > 0, "no proposal reached the hanging region");
    let flat = chain.flat_samples(0);
    assert!(flat.column(0).iter().all(|&a| a <= 1.6), "a sample where the model hung");
    // The model's outputs reached the likelihood: the slope stays near the data's 0.3.
    assert!(flat.column(1).iter().all(|&b| (b - 0.3).abs() < 0.2));
}
