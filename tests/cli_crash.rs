//! Crash safety: a run killed with SIGKILL at random moments, many times, and
//! resumed each time, finishes with a chain file whose data are bitwise identical
//! to an uninterrupted run; SIGINT/SIGTERM stop cleanly with a checkpoint.
//!
//! `CLIMCAL_CRASH_KILLS=200 cargo test --test cli_crash -- --nocapture` runs a
//! longer soak (default 25 kills).
#![cfg(all(feature = "hdf5", unix))]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use climcal::storage::{read_chain, read_resume};

/// 3 parameters, 16 walkers, a model that sleeps 40 µs per evaluation (~1–2 ms a
/// step), thin 3 and a checkpoint every 4 steps: kills land in every phase
/// (sampling, appending rows, writing state, committing).
const CONFIG: &str = r#"
[parameters.a]
prior = { dist = "normal", mean = 0.0, std = 3.0 }
[parameters.b]
prior = { dist = "uniform", lower = -5.0, upper = 5.0 }
[parameters.c]
prior = { dist = "log_normal", mu = 0.0, sigma = 0.5 }
transform = "log"

[model]
name = "gaussian"
options = { mean = [0.5, -1.0, 1.0], std = [1.0, 0.5, 0.3], sleep_us = 40 }

[sampler]
n_walkers = 16
n_steps = 1500
thin = 3
seed = 2024

[output]
checkpoint_every = 4
"#;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_climcal"));
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

/// A small deterministic generator for kill delays (xorshift64*).
struct Lcg(u64);
impl Lcg {
    fn next_ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        lo + (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) % (hi - lo)
    }
}

/// Wait for `child` up to `ms`, then SIGKILL it. True when it was killed.
fn kill_after(mut child: Child, ms: u64) -> (bool, i32) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(ms) {
        if let Some(st) = child.try_wait().unwrap() {
            return (false, st.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL
    let st = child.wait().unwrap();
    match st.code() {
        Some(c) => (false, c), // finished just before the kill
        None => (true, -9),
    }
}

fn assert_same_data(a: &Path, b: &Path) {
    let (ca, ma) = read_chain(a).unwrap();
    let (cb, mb) = read_chain(b).unwrap();
    assert_eq!(ca.n_rows(), cb.n_rows());
    assert!(ca.samples_raw() == cb.samples_raw(), "chains differ");
    assert!(ca.ln_probs_raw() == cb.ln_probs_raw(), "log-probs differ");
    assert_eq!(ca.accepted(), cb.accepted());
    assert_eq!(ca.n_steps(), cb.n_steps());
    assert_eq!(ma.unwrap().seed, mb.unwrap().seed);
    assert_eq!(read_resume(a).unwrap().state, read_resume(b).unwrap().state, "final sampler states differ");
}

#[test]
fn kill_9_at_random_moments_then_resume_is_bitwise_identical() {
    let kills_wanted: usize = std::env::var("CLIMCAL_CRASH_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(25);
    kill_9_soak(CONFIG, kills_wanted);
}

/// The same with a mixture of moves that keep tuning state (DIME's adaptive
/// proposal, the Gaussian move's sequential index) and draw once per step for
/// the ensemble (the mixture's choice, randomised splits, the Gaussian factor).
#[test]
fn kill_9_then_resume_is_bitwise_identical_with_a_move_mixture() {
    let moves = r#"moves = [{ kind = "de", weight = 0.4 }, { kind = "de_snooker", weight = 0.2 }, { kind = "dime", weight = 0.2 },
  { kind = "gaussian", cov = 0.1, mode = "sequential", factor = 2.0, weight = 0.2 }]
"#;
    kill_9_soak(&CONFIG.replace("seed = 2024\n", &format!("seed = 2024\n{moves}")), 10);
}

fn kill_9_soak(config: &str, kills_wanted: usize) {
    assert!(config.contains("seed"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("run.toml");
    std::fs::write(&cfg, config).unwrap();
    let reference = dir.path().join("ref.h5");
    let st = bin().args(["run", "-q", "-o"]).arg(&reference).arg(&cfg).status().unwrap();
    assert!(st.success());

    let out = dir.path().join("crash.h5");
    let mut rng = Lcg(0x9E37_79B9_7F4A_7C15);
    let mut kills = 0;
    let mut restarts_before_first_commit = 0;
    let mut resumes = 0;
    // First run: killed at a random moment; if that was before its file existed,
    // start it again (nothing was committed, so there is nothing to resume).
    loop {
        let child = bin().args(["run", "-q", "-o"]).arg(&out).arg(&cfg).arg("--force").spawn().unwrap();
        let (killed, code) = kill_after(child, rng.next_ms(5, 150));
        kills += killed as usize;
        if !killed {
            assert_eq!(code, 0);
        }
        if out.exists() {
            break;
        }
        restarts_before_first_commit += 1;
        assert!(restarts_before_first_commit < 50, "the run never created its file");
    }
    // Resume, killing at random moments, until a resume finishes.
    let t0 = Instant::now();
    loop {
        let mut cmd = bin();
        cmd.args(["resume", "-q"]).arg(&out);
        if kills >= kills_wanted {
            let st = cmd.output().unwrap();
            assert!(st.status.success(), "final resume failed: {}", String::from_utf8_lossy(&st.stderr));
            break;
        }
        let child = cmd.spawn().unwrap();
        // Short delays hit start-up and the first checkpoints; long ones hit mid-run.
        let ms = if kills % 3 == 0 { rng.next_ms(2, 30) } else { rng.next_ms(30, 200) };
        let (killed, code) = kill_after(child, ms);
        resumes += 1;
        if killed {
            kills += 1;
        } else {
            assert_eq!(code, 0, "resume failed without being killed");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(600), "soak took too long");
    }
    eprintln!("{kills} kills, {resumes} resumes, {restarts_before_first_commit} restarts before the first commit");
    assert!(kills >= kills_wanted.min(10), "only {kills} kills happened: the run finished too fast to test");
    assert_same_data(&reference, &out);
}

#[test]
fn sigint_and_sigterm_checkpoint_and_exit_130_then_resume_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("run.toml");
    std::fs::write(
        &cfg,
        CONFIG.replace("n_steps = 1500", "n_steps = 400").replace("checkpoint_every = 4", "checkpoint_every = 50"),
    )
    .unwrap();
    let reference = dir.path().join("ref.h5");
    assert!(bin().args(["run", "-q", "-o"]).arg(&reference).arg(&cfg).status().unwrap().success());
    let out = dir.path().join("sig.h5");
    for (i, sig) in ["INT", "TERM"].iter().enumerate() {
        let mut cmd = bin();
        if i == 0 {
            cmd.args(["run", "-q", "-o"]).arg(&out).arg(&cfg);
        } else {
            cmd.args(["resume", "-q"]).arg(&out);
        }
        let child = cmd.spawn().unwrap();
        // Wait until this process has committed a checkpoint so the signal lands mid-run.
        let start = if out.exists() { read_resume(&out).unwrap().state.iteration } else { 0 };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if out.exists() && read_resume(&out).map(|p| p.state.iteration > start).unwrap_or(false) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let pid = child.id().to_string();
        assert!(Command::new("kill").args([&format!("-{sig}"), &pid]).status().unwrap().success());
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "SIG{sig}: {err}");
        assert!(err.contains("climcal resume"), "{err}");
        let it = read_resume(&out).unwrap().state.iteration;
        assert!(it > 0 && it < 400, "SIG{sig} should stop mid-run, stopped at {it}");
        // The checkpoint is at the step the signal interrupted, not the last cadence point.
        assert_eq!(read_chain(&out).unwrap().0.n_steps(), it);
    }
    let o = bin().args(["resume", "-q"]).arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_data(&reference, &out);
}
