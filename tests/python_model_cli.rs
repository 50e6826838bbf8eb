//! `[model] name = "python"` through the `climcal` binary: a Python function in
//! worker interpreters gives the same chain for any number of threads, a model
//! that raises or returns NaN for part of the prior costs counted failures (the
//! first error shown), a hanging one is stopped by its timeout, and bad options
//! stop the run at start-up with exit 2. Skipped (saying so) without python3.
#![cfg(all(feature = "hdf5", unix))]

use std::path::{Path, PathBuf};
use std::process::Command;

use climcal::sampler::Chain;
use tempfile::TempDir;

fn have_python() -> bool {
    Command::new("python3").args(["-c", "import numpy"]).status().map(|s| s.success()).unwrap_or(false)
}

/// A directory with toy_python.toml (edited by `edit`), its model and its data.
fn case(edit: impl Fn(String) -> String) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for f in ["toy_linear.csv", "toy_python_model.py"] {
        std::fs::copy(data.join(f), dir.path().join(f)).unwrap();
    }
    let cfg = std::fs::read_to_string(data.join("toy_python.toml")).unwrap();
    std::fs::write(dir.path().join("run.toml"), edit(cfg)).unwrap();
    dir
}

fn climcal(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_climcal")).current_dir(dir).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn out(dir: &TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn python_model_same_chain_for_any_threads_with_counted_failures() {
    if !have_python() {
        eprintln!("skipped: no python3 with numpy");
        return;
    }
    let d = case(|c| c);
    let (code, err) = climcal(d.path(), &["run", "run.toml", "-o", "t1.h5", "--threads", "1"]);
    assert_eq!(code, 0, "{err}");
    // The first Python error is shown with its message.
    assert!(err.contains("ValueError: intercept") && err.contains("out of this model's range"), "{err}");
    let (code, err) = climcal(d.path(), &["run", "run.toml", "-o", "t2.h5", "--threads", "2", "-q"]);
    assert_eq!(code, 0, "{err}");
    let a = Chain::load(out(&d, "t1.h5")).unwrap();
    let b = Chain::load(out(&d, "t2.h5")).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(a.samples_raw()), bits(b.samples_raw()));
    assert_eq!(bits(a.ln_probs_raw()), bits(b.ln_probs_raw()));
    // Raised (intercept > 1.62) and NaN (slope > 0.345) evaluations are failures,
    // and no stored sample lies where the model failed.
    assert!(a.failures() > 0, "no proposal reached the failing region");
    assert_eq!(a.failures(), b.failures());
    let flat = a.flat_samples(0);
    assert!(flat.column(0).iter().all(|&x| x <= 1.62));
    assert!(flat.column(1).iter().all(|&x| x <= 0.345));
    // The outputs reached the likelihood: the slope stays near the data's 0.3.
    assert!(flat.column(1).iter().all(|&x| (x - 0.3).abs() < 0.1));
}

#[test]
fn a_hanging_python_model_is_stopped_by_its_timeout() {
    if !have_python() {
        return;
    }
    let d = case(|c| {
        c.replace("function = \"line\"", "function = \"line_hang\", timeout_seconds = 2").replace("n_steps = 40", "n_steps = 8")
    });
    let t0 = std::time::Instant::now();
    let (code, err) = climcal(d.path(), &["run", "run.toml", "-o", "h.h5", "--threads", "2"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("timeout"), "{err}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(100), "{:?}", t0.elapsed());
    let c = Chain::load(out(&d, "h.h5")).unwrap();
    assert!(c.failures() > 0);
    assert!(c.flat_samples(0).column(0).iter().all(|&x| x <= 1.62));
}

#[test]
fn bad_python_model_options_exit_2_naming_the_cause() {
    if !have_python() {
        return;
    }
    for (edit, expect) in [
        (("function = \"line\"", "function = \"lines\""), "no function 'lines'"),
        (("file = \"toy_python_model.py\"", "file = \"missing.py\""), "missing.py does not exist"),
        (("file = \"toy_python_model.py\"", "module = \"no_such_module_xyz\""), "No module named 'no_such_module_xyz'"),
        (("outputs = [\"y\"]", "outputs = [\"y\"], timeout_seconds = -1"), "timeout_seconds must be > 0"),
        (("outputs = [\"y\"]", "outputs = [\"y\"], python = \"/nonexistent/python3\""), "/nonexistent/python3"),
    ] {
        let d = case(|c| c.replace(edit.0, edit.1));
        let (code, err) = climcal(d.path(), &["run", "run.toml", "-o", "x.h5"]);
        assert_eq!(code, 2, "{edit:?}: {err}");
        assert!(err.contains(expect), "{edit:?}: {err}");
        assert!(!out(&d, "x.h5").exists());
    }
}
