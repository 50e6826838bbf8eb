//! The bad-input catalogue of issue 13, one test per fault: every case exits 2
//! (never a panic, an abort or a 10 s wait), its message names the cause, and no
//! file is created, changed or left behind. README "Reliability" tabulates them.
#![cfg(feature = "hdf5")]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
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
n_steps = 20
seed = 11

[output]
path = "out.h5"
checkpoint_every = 5
"#;

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
    /// Names of the files in the case directory, sorted.
    fn listing(&self) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(self.dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }
    /// Every file's name and bytes (directories by name only).
    fn contents(&self) -> Vec<(String, Vec<u8>)> {
        self.listing().into_iter().map(|n| (n.clone(), std::fs::read(self.p(&n)).unwrap_or_default())).collect()
    }
    /// `climcal args…` in the case directory: (exit code, stderr).
    fn climcal(&self, args: &[&str]) -> (i32, String) {
        let out = Command::cargo_bin("climcal").unwrap().current_dir(self.dir.path()).args(args).output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
    }
    /// `climcal run run.toml -q` must exit 2 naming every needle, and create no file.
    fn bad_run(&self, needles: &[&str]) -> String {
        let before = self.listing();
        let (code, err) = self.climcal(&["run", "run.toml", "-q"]);
        assert_eq!(code, 2, "expected exit 2, got {code}: {err}");
        for n in needles {
            assert!(err.contains(n), "message should name {n:?}: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(self.listing(), before, "a refused run must create no file");
        err
    }
    /// `climcal args…` on an existing file must exit 2 naming every needle and
    /// leave every file byte-identical.
    fn bad_cmd(&self, args: &[&str], needles: &[&str]) -> String {
        let before = self.contents();
        let (code, err) = self.climcal(args);
        assert_eq!(code, 2, "{args:?}: expected exit 2, got {code}: {err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: message should name {n:?}: {err}");
        }
        let after = self.contents();
        assert!(before == after, "{args:?} changed, created or removed a file");
        err
    }
}

fn linear_config() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/toy_linear.toml"))
        .unwrap()
        .replace("[output]", "[output]\npath = \"out.h5\"")
        .replace("n_steps = 300", "n_steps = 20")
}

/// A finished run of GAUSS in a new case: `out.h5`.
fn finished_run() -> Case {
    let c = Case::new(GAUSS);
    let (code, err) = c.climcal(&["run", "run.toml", "-q"]);
    assert_eq!(code, 0, "{err}");
    c
}

#[test]
fn toy_cost_options_are_checked_not_panics() {
    for (model, opts) in [
        ("gaussian", "cost_us"),
        ("gaussian", "sleep_us"),
        ("gaussian", "work_us"),
        ("gaussian", "work_spread"),
        ("linear", "sleep_us"),
        ("linear", "work_us"),
    ] {
        for bad in ["-1.0", "nan", "inf", "1e308", "-inf"] {
            let config = if model == "gaussian" {
                GAUSS.replace("std = [1.0, 2.0] }", &format!("std = [1.0, 2.0], {opts} = {bad} }}"))
            } else {
                linear_config().replace("t_end = 20 }", &format!("t_end = 20, {opts} = {bad} }}"))
            };
            let c = Case::new(&config);
            c.bad_run(&[opts, model]);
        }
    }
}

#[test]
fn sizes_that_drive_allocations_are_limited_first() {
    // A model time axis of 1e12 + 1 points (8 TB of times).
    let c = Case::new(&linear_config().replace("t_end = 20", "t_end = 1e12"));
    c.bad_run(&["t_end", "time points", "at most"]);
    // 1e308: the same message, not "initial walkers have log-probability -inf".
    let c = Case::new(&linear_config().replace("t_end = 20", "t_end = 1e308"));
    let e = c.bad_run(&["t_end", "time points"]);
    assert!(!e.contains("initial walker"), "{e}");
    // Walkers: 8e9 × 2 parameters of state.
    let c = Case::new(&GAUSS.replace("n_walkers = 8", "n_walkers = 8000000000"));
    c.bad_run(&["8000000000 walkers", "GiB", "memory"]);
    // A density model's dimension (a Vec of that many names and values).
    let c = Case::new("[model]\nname = \"rosenbrock\"\noptions = { dim = 8000000000 }\n");
    c.bad_run(&["dim = 8000000000", "at most"]);
    // Steps × walkers × parameters kept in memory.
    let c = Case::new(&GAUSS.replace("n_steps = 20", "n_steps = 1000000000000000"));
    c.bad_run(&["1000000000000000 steps", "GiB", "thin"]);
    let (code, err) = c.climcal(&["run", "run.toml", "-q", "--steps", "18446744073709551615"]);
    assert_eq!(code, 2, "{err}");
    // Blobs: the same steps are fine without blobs and too many with 21 per walker.
    let c = Case::new(&linear_config().replace("n_steps = 20", "n_steps = 20000000000"));
    c.bad_run(&["blobs", "GiB"]);
    // A constant-forcing two-layer model over 1e15 years.
    let two_layer = r#"
[parameters.lambda]
prior = { dist = "uniform", lower = 0.5, upper = 2.0 }
[parameters.c]
prior = { dist = "uniform", lower = 5.0, upper = 10.0 }
[parameters.c_d]
prior = { dist = "uniform", lower = 50.0, upper = 150.0 }
[parameters.gamma]
prior = { dist = "uniform", lower = 0.5, upper = 1.0 }
[model]
name = "two_layer"
options = { forcing = { constant = 3.7, n_years = 1e15 } }
[target.variables."Surface Temperature"]
file = "toy_linear.csv"
time_column = "year"
column = "y"
sigma = "y_sigma"
[output]
path = "out.h5"
"#;
    let c = Case::new(two_layer);
    c.bad_run(&["n_years", "at most"]);
}

#[test]
fn force_onto_a_directory_leaves_nothing_behind() {
    let c = Case::new(GAUSS);
    std::fs::create_dir(c.p("adir")).unwrap();
    let e = c.bad_cmd(&["run", "run.toml", "-q", "-o", "adir", "--force"], &["adir", "directory"]);
    assert!(!c.p("adir.partial").exists(), "{e}");
}

#[test]
fn resume_checks_the_whole_file_before_the_first_step() {
    for (what, edit) in [
        ("mcmc/log_prob", "unlink:mcmc/log_prob"),
        ("mcmc/chain", "unlink:mcmc/chain"),
        ("mcmc/accepted", "unlink:mcmc/accepted"),
        ("mcmc/chain", "fixed:mcmc/chain"),
        ("mcmc/log_prob", "short:mcmc/log_prob"),
    ] {
        let c = finished_run();
        {
            let f = hdf5::File::open_rw(c.p("out.h5")).unwrap();
            let (kind, name) = edit.split_once(':').unwrap();
            f.unlink(name).unwrap();
            match kind {
                "unlink" => {}
                // Same shape, but not resizable: the next append would fail.
                "fixed" => {
                    f.new_dataset::<f64>().shape((20, 8, 2)).create(name).unwrap();
                }
                // Fewer rows than committed.
                "short" => {
                    f.new_dataset::<f64>().chunk((1, 8)).shape((1.., 8)).create(name).unwrap();
                }
                _ => unreachable!(),
            }
            f.close().unwrap();
        }
        c.bad_cmd(&["resume", "out.h5", "-q", "--steps", "20"], &["out.h5", what]);
    }
}

#[test]
fn csv_errors_name_the_file_and_its_editor_line() {
    let c = Case::new(&linear_config());
    let csv = std::fs::read_to_string(c.p("toy_linear.csv")).unwrap();
    // Line 1 is a comment, line 2 the header, so time t is on line t + 3.
    c.write("toy_linear.csv", &csv.replace("\n10,", "\n10x,"));
    c.bad_run(&["toy_linear.csv", "line 13", "10x"]);
    let bad_value = csv.lines().map(|l| if l.starts_with("10,") { "10,nan,0.5" } else { l }).collect::<Vec<_>>().join("\n");
    c.write("toy_linear.csv", &bad_value);
    c.bad_run(&["toy_linear.csv", "line 13", "'y'", "NaN"]);
    let bad_sigma = csv.lines().map(|l| if l.starts_with("4,") { "4,1.0,-0.5" } else { l }).collect::<Vec<_>>().join("\n");
    c.write("toy_linear.csv", &bad_sigma);
    c.bad_run(&["toy_linear.csv", "line 7", "uncertaint"]);
    let unsorted = csv.replace("\n5,", "\n3,");
    c.write("toy_linear.csv", &unsorted);
    c.bad_run(&["toy_linear.csv", "line 8", "increase"]);
}

#[test]
fn resume_of_a_chain_with_a_broken_run_file_names_the_chain_file() {
    let c = finished_run();
    {
        let f = hdf5::File::open_rw(c.p("out.h5")).unwrap();
        let g = f.group("climcal").unwrap();
        let v: hdf5::types::VarLenUnicode = "this is = = not toml".parse().unwrap();
        g.attr("config_toml").unwrap().write_scalar(&v).unwrap();
    }
    c.bad_cmd(&["resume", "out.h5", "-q", "--steps", "5"], &["chain file out.h5", "run file", "line 1"]);
}

#[test]
fn a_negative_iteration_is_corrupt_not_a_huge_count() {
    let c = finished_run();
    {
        let f = hdf5::File::open_rw(c.p("out.h5")).unwrap();
        f.group("mcmc").unwrap().attr("iteration").unwrap().write_scalar(&-5i64).unwrap();
    }
    for args in [&["info", "out.h5"][..], &["resume", "out.h5", "-q", "--steps", "5"][..]] {
        let e = c.bad_cmd(args, &["out.h5", "iteration", "-5"]);
        assert!(!e.contains("18446744073709551611"), "{e}");
    }
}

#[test]
fn corrupt_files_fail_at_once() {
    let c = finished_run();
    let bytes = std::fs::read(c.p("out.h5")).unwrap();
    std::fs::write(c.p("trunc.h5"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(c.p("head.h5"), &bytes[..600.min(bytes.len())]).unwrap();
    c.write("text.h5", "not hdf5 at all");
    let mut garbage = bytes.clone();
    for b in garbage.iter_mut().skip(8).step_by(7) {
        *b ^= 0x5a;
    }
    std::fs::write(c.p("garbage.h5"), &garbage).unwrap();
    for f in ["trunc.h5", "head.h5", "text.h5", "garbage.h5"] {
        for cmd in ["info", "resume"] {
            let t0 = Instant::now();
            let args: Vec<&str> = if cmd == "info" { vec![cmd, f] } else { vec![cmd, f, "-q"] };
            c.bad_cmd(&args, &[f]);
            // The lock retry waits 10 s; a corrupt file must not wait at all
            // (a debug build opens and fails in well under a second).
            assert!(t0.elapsed() < Duration::from_secs(5), "{cmd} {f} took {:?}", t0.elapsed());
        }
    }
}

#[test]
fn two_writers_on_one_file_are_detected() {
    use climcal::density::FnDensity;
    use climcal::sampler::{EnsembleSampler, InitMethod, RunOptions};
    use climcal::storage::{ChainMeta, HdfSink};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("two.h5");
    let d = FnDensity::new(2, |x: &[f64]| -0.5 * (x[0] * x[0] + x[1] * x[1]));
    let meta = ChainMeta::for_density(&d, 3, 1);
    let s = EnsembleSampler::new(d, 3).serial().with_n_walkers(8).unwrap();
    let mut st = s.initialize_without_prior(InitMethod::Ball { center: vec![0.0; 2], radius: 0.1 }).unwrap();
    let mut first = HdfSink::create(&p, &meta, &st, 0, false).unwrap();
    // A second writer (a resume started by mistake) checkpoints the same file.
    let (mut second, _) = HdfSink::open_resume(&p).unwrap();
    let opts = RunOptions { checkpoint_every: 5, ..Default::default() };
    let go = |_: &climcal::sampler::ProgressInfo| std::ops::ControlFlow::Continue(());
    s.run_with_sink(&mut st.clone(), 10, &opts, Some(&mut second), go).unwrap();
    let e = s.run_with_sink(&mut st, 10, &opts, Some(&mut first), go).expect_err("the first writer must notice").to_string();
    assert!(e.contains("two.h5") && e.contains("another process"), "{e}");
}
