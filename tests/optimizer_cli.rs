//! `climcal optimize` and `climcal run --init best|FILE` / `init = "best"`.
#![cfg(feature = "hdf5")]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use climcal::optimizer::BestFit;
use climcal::storage::read_chain;
use tempfile::TempDir;

struct Case {
    dir: TempDir,
}

impl Case {
    /// The linear-model run of tests/data (priors, CSV target, Gaussian likelihood).
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        std::fs::copy(data.join("toy_linear.csv"), dir.path().join("toy_linear.csv")).unwrap();
        let cfg = std::fs::read_to_string(data.join("toy_linear.toml")).unwrap().replace("n_steps = 300", "n_steps = 20");
        std::fs::write(dir.path().join("run.toml"), cfg).unwrap();
        Self { dir }
    }
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// (exit code, stdout, stderr)
    fn climcal(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::cargo_bin("climcal").unwrap().current_dir(self.dir.path()).args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// Mean of each parameter over the walkers of the first stored row.
fn first_row_mean(path: &Path) -> Vec<f64> {
    let (chain, _) = read_chain(path).unwrap();
    let s = chain.samples();
    (0..chain.dim()).map(|p| s.slice(ndarray::s![0, .., p]).mean().unwrap()).collect()
}

#[test]
fn optimize_prints_and_writes_the_best_fit() {
    let c = Case::new();
    let (code, out, err) = c.climcal(&["optimize", "run.toml", "-o", "best.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("intercept") && out.contains("slope") && out.contains("maximum a posteriori"), "{out}");
    let fit = BestFit::read(&c.p("best.toml")).unwrap();
    // Data: y = 1.5 + 0.3 t + N(0, 0.5²) on t = 0..20; least squares gives
    // intercept ≈ 1.35 ± 0.21 and slope ≈ 0.31 ± 0.018, so the MAP lies within
    // 3 SE of the generating values.
    assert!((fit.params["intercept"] - 1.5).abs() < 0.63, "{fit:?}");
    assert!((fit.params["slope"] - 0.3).abs() < 0.054, "{fit:?}");
    // An existing output is not overwritten without --force.
    let (code, _, err) = c.climcal(&["optimize", "run.toml", "-o", "best.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--force"), "{err}");
    // JSON, MLE, another method.
    let (code, out, err) = c.climcal(&["optimize", "run.toml", "--mle", "--method", "nelder-mead", "--json", "-o", "best.json"]);
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["objective"], "max_likelihood");
    assert_eq!(BestFit::read(&c.p("best.json")).unwrap().method, "nelder-mead");
}

#[test]
fn bad_optimize_input_names_the_fix() {
    let c = Case::new();
    let (code, _, err) = c.climcal(&["optimize", "run.toml", "--method", "simplex"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nelder-mead"), "{err}");
    let (code, _, err) = c.climcal(&["optimize", "run.toml", "--restarts", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("n_restarts"), "{err}");
    let (code, _, err) = c.climcal(&["run", "run.toml", "-q", "--init", "nothere.toml", "-o", "x.h5"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nothere.toml"), "{err}");
    assert!(!c.p("x.h5").exists());
}

#[test]
fn run_starts_in_a_ball_around_the_best_fit() {
    let c = Case::new();
    let (code, _, err) = c.climcal(&["optimize", "run.toml", "-o", "best.toml", "-q"]);
    assert_eq!(code, 0, "{err}");
    let best: Vec<f64> = BestFit::read(&c.p("best.toml")).unwrap().params.values().copied().collect();
    // From a file, from `--init best` (optimise first, same seed → same fit), and
    // from `init = "best"` in the run file.
    let cfg = std::fs::read_to_string(c.p("run.toml")).unwrap().replace("seed = 7", "seed = 7\ninit = \"best\"");
    std::fs::write(c.p("best-init.toml"), cfg).unwrap();
    for (args, out) in [
        (vec!["run", "run.toml", "-q", "--init", "best.toml", "-o", "a.h5"], "a.h5"),
        (vec!["run", "run.toml", "-q", "--init", "best", "-o", "b.h5"], "b.h5"),
        (vec!["run", "best-init.toml", "-q", "-o", "c.h5"], "c.h5"),
    ] {
        let (code, _, err) = c.climcal(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        let m = first_row_mean(&c.p(out));
        // Radius 1e-3 in sampler space (the slope is logit-transformed on [-1, 2],
        // dx/du ≤ 0.75) and one stretch step away from it: the walkers' mean stays
        // within 0.05 of the best fit (posterior sd: 0.2 and 0.02; one step of
        // 16 walkers from a 1e-3 ball cannot move the mean further).
        for (a, b) in m.iter().zip(&best) {
            assert!((a - b).abs() < 0.05, "{args:?}: first-row mean {m:?} vs best {best:?}");
        }
    }
}
