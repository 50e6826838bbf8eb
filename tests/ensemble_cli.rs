//! `climcal ensemble`: the ensemble file does not depend on the thread count (byte
//! for byte); a run killed with SIGKILL at random moments and resumed each time
//! ends with the same file as an uninterrupted run; bad input stops before any
//! model runs.
#![cfg(all(feature = "hdf5", unix))]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use climcal::ensemble::{ColumnSource, MemberSink};
use climcal::storage::ensemble::EnsembleFile;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-examples/two-layer-fair-style.toml")
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_climcal"));
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

/// What an ensemble file holds: every column of every member as bits, the commit
/// counters, and the constraint stage's datasets and the constrained chain (to
/// say what differs when the bytes do).
fn contents(path: &Path) -> Vec<(String, Vec<u64>)> {
    let f = EnsembleFile::open(path).unwrap();
    let mut out = vec![("committed".to_string(), vec![f.committed(), f.failures()])];
    for name in f.column_names() {
        out.push((name.clone(), f.column(&name).unwrap().iter().map(|v| v.to_bits()).collect()));
    }
    let h = hdf5::File::open(path).unwrap();
    for ds in ["ensemble/constraints/weights", "mcmc/chain", "mcmc/log_prob", "mcmc/blobs"] {
        let v: Vec<f64> = h.dataset(ds).unwrap().read_raw().unwrap();
        out.push((ds.into(), v.iter().map(|x| x.to_bits()).collect()));
    }
    let drawn: Vec<u64> = h.dataset("ensemble/constraints/drawn").unwrap().read_raw().unwrap();
    out.push(("drawn".into(), drawn));
    let passed: Vec<u8> = h.dataset("ensemble/constraints/passed").unwrap().read_raw().unwrap();
    out.push(("passed".into(), passed.iter().map(|&p| p as u64).collect()));
    out
}

fn run(args: &[&str]) -> (i32, String) {
    let o = bin().args(args).output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn threads_do_not_change_the_ensemble_and_info_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = example();
    let cfg = cfg.to_str().unwrap();
    let (a, b) = (dir.path().join("t1.h5"), dir.path().join("t2.h5"));
    // Few members: relax min_ess through a smaller draw is not possible from the
    // command line, so the example's min_ess = 841 must hold at 6000 members.
    for (p, t) in [(&a, "1"), (&b, "2")] {
        let (code, err) =
            run(&["ensemble", cfg, "-n", "6000", "--batch", "700", "--threads", t, "-q", "-o", p.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }
    let (ca, cb) = (contents(&a), contents(&b));
    assert!(ca == cb, "1 and 2 threads give different data");
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(), "1 and 2 threads give different file bytes");
    // The run records are in the sidecar log, not in the file.
    let log = std::fs::read_to_string(a.with_extension("h5.log")).unwrap();
    assert!(
        log.lines().count() == 2 && log.contains("\"threads_per_rank\":1") && log.contains("\"event\":\"constraints\""),
        "{log}"
    );
    assert_eq!(ca[0].1, vec![6000, 0]);
    // Another sampling design or seed changes the members.
    let c = dir.path().join("lhs.h5");
    let (code, err) = run(&["ensemble", cfg, "-n", "6000", "--sampling", "lhs", "-q", "-o", c.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(contents(&c)[1] != ca[1]);
    // climcal info reads it: the constrained ensemble's table.
    let o = Command::new(env!("CARGO_BIN_EXE_climcal")).args(["info", a.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("ensemble of 6000 members") && text.contains("constrained ensemble: 841 members"), "{text}");
    assert!(text.contains("gsat_2003_2022 [K]"), "{text}");
    // The constrained draw is a chain file of one step and 841 walkers.
    let (chain, _) = climcal::storage::read_chain(&a).unwrap();
    assert_eq!((chain.n_walkers(), chain.n_rows(), chain.dim()), (841, 1, 6));
    // The model's 5 derived quantities, 3 outputs, then per-variable
    // log-likelihoods and RMSEs (2 variables): 5 + 3 + 2 + 2.
    assert_eq!(chain.n_blobs(), 12);
    let names: Vec<hdf5::types::VarLenUnicode> =
        hdf5::File::open(&a).unwrap().dataset("climcal/derived_names").unwrap().read_raw().unwrap();
    let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    assert_eq!(names[..2], ["ECS", "TCR"]);
    assert!(names.contains(&"gsat_2003_2022") && names.contains(&"rmse:Surface Temperature"), "{names:?}");
    // ECS = F2x / λ for every member (the two-layer model's definition): one F2x.
    let f = EnsembleFile::open(&a).unwrap();
    let (ecs, lam) = (f.column("ECS").unwrap(), f.column("lambda").unwrap());
    let f2x = ecs[0] * lam[0];
    assert!(f2x > 3.0 && f2x < 4.5, "{f2x}");
    assert!(ecs.iter().zip(&lam).all(|(e, l)| (e * l - f2x).abs() < 1e-12 * f2x));
}

#[test]
fn kill_9_at_random_moments_then_resume_gives_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = example();
    let cfg = cfg.to_str().unwrap();
    let reference = dir.path().join("ref.h5");
    let args = |out: &Path, resume: bool| {
        let mut v: Vec<String> = ["ensemble", cfg, "-n", "8000", "--batch", "200", "-q", "-o", out.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if resume {
            v.push("--resume".into());
        }
        v
    };
    let t0 = Instant::now();
    let (code, err) = run(&args(&reference, false).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    let full = t0.elapsed();
    // Kill at delays spread over the run (xorshift, fixed seed), resuming each time.
    let out = dir.path().join("killed.h5");
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let (mut kills, mut finished) = (0, false);
    for _ in 0..60 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // A third of an uninterrupted run at most: several kills land before it ends.
        let ms = 20 + state % (full.as_millis() as u64 / 3).max(50);
        let mut child = bin().args(args(&out, true)).spawn().unwrap();
        let start = Instant::now();
        let mut done = None;
        while start.elapsed() < Duration::from_millis(ms) {
            if let Some(st) = child.try_wait().unwrap() {
                done = Some(st);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        match done {
            Some(st) => {
                assert!(st.success(), "exit {st:?}: {}", {
                    let mut s = String::new();
                    use std::io::Read;
                    child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
                    s
                });
                finished = true;
                break;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    if !finished {
        let (code, err) = run(&args(&out, true).iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(code, 0, "{err}");
    }
    assert!(kills >= 3, "only {kills} kills landed: the run is too short to test anything");
    eprintln!("{kills} kills, then resumed to the end");
    assert!(contents(&reference) == contents(&out), "resumed ensemble differs after {kills} kills");
    assert!(
        std::fs::read(&reference).unwrap() == std::fs::read(&out).unwrap(),
        "resumed ensemble file differs in its bytes after {kills} kills"
    );
}

#[test]
fn bad_input_stops_before_any_model_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = example();
    let text = std::fs::read_to_string(&cfg).unwrap();
    let base = cfg.parent().unwrap();
    let write = |name: &str, t: &str| {
        // Next to the example, so that its data paths resolve.
        let p = base.join(format!(".test-{name}-{}.toml", std::process::id()));
        std::fs::write(&p, t).unwrap();
        p
    };
    let out = dir.path().join("x.h5");
    let cases = [
        ("unknown-target", text.replace("ohc_1971_2020 = { dist", "nonsense = { dist"), "'nonsense' is not a stored quantity"),
        ("bad-quantiles", text.replace("q05 = 0.87", "q05 = 1.5"), "target quantiles must increase"),
        ("rmse-var", text.replace("rmse = \"Surface Temperature\"", "rmse = \"Sea Level\""), "not a target variable"),
        ("bad-key", text.replace("batch = 8192", "batch = 8192\nwobble = 1"), "wobble"),
    ];
    for (name, t, want) in cases {
        let p = write(name, &t);
        let (code, err) = run(&["ensemble", p.to_str().unwrap(), "-n", "100", "-o", out.to_str().unwrap()]);
        std::fs::remove_file(&p).unwrap();
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(!out.exists(), "{name}: a file was written");
    }
    // Too few members for [ensemble.draw] min_ess: the members are kept, the
    // constraint stage says what to do.
    let cfg = cfg.to_str().unwrap();
    let (code, err) = run(&["ensemble", cfg, "-n", "900", "--batch", "300", "-q", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("below [ensemble.draw] min_ess = 841"), "{err}");
    // An existing file needs --force or --resume; a resume must match.
    let (code, err) = run(&["ensemble", cfg, "-n", "900", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--resume"), "{err}");
    let (code, err) = run(&["ensemble", cfg, "-n", "900", "--seed", "5", "--resume", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("seed (5 vs 2024)"), "{err}");
}
