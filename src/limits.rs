//! Limits on the sizes that drive allocations, checked before allocating, so that
//! a run file asking for too much is a bad-input error naming the size it would
//! need (never "memory allocation of … bytes failed" and an abort).
//!
//! - model time axes: at most [`MAX_TIME_POINTS`] points; density models at most
//!   [`MAX_DIM`] parameters;
//! - memory the sampler keeps (walker state, the chain in memory, blobs): at most
//!   the machine's physical memory ([`memory_limit`]).

use crate::error::{Error, Result};

/// The most points a model time axis may have (default limit: 10 million, about
/// 27 000 years at daily steps, 80 MB per output series).
pub const MAX_TIME_POINTS: u64 = 10_000_000;

/// The most parameters a density model may have (`options.dim`).
pub const MAX_DIM: usize = 100_000;

/// The number of integer times in `start..=end` (from `start` in steps of 1), or an
/// error naming `what` when it is not finite or exceeds [`MAX_TIME_POINTS`].
pub fn time_points(what: &str, start: f64, end: f64) -> Result<usize> {
    let span = end - start;
    if !(span.is_finite() && span >= 0.0) {
        return Err(Error::Config(format!("{what}: the time axis from {start} to {end} is not a finite, non-negative span")));
    }
    let n = span.floor() + 1.0;
    check_time_points(what, n)?;
    Ok(n as usize)
}

/// Check a time-axis length `n` (as a float, so huge values are not wrapped).
pub fn check_time_points(what: &str, n: f64) -> Result<()> {
    if n > MAX_TIME_POINTS as f64 || n.is_nan() {
        return Err(Error::Config(format!(
            "{what}: the time axis would have {n:.3e} time points; at most {MAX_TIME_POINTS} are allowed (shorten the period)"
        )));
    }
    Ok(())
}

/// Physical memory of this machine in bytes (`sysconf`), or 1 TiB where unknown.
pub fn memory_limit() -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions; it returns -1 for unknown names.
        let (pages, size) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
        if pages > 0 && size > 0 {
            return (pages as u64).saturating_mul(size as u64);
        }
    }
    1 << 40
}

/// Bytes in GiB with two decimals.
pub fn gib(bytes: u128) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// An error when `bytes` (None = beyond 2^128) exceed [`memory_limit`]; `what`
/// says what needs them and `fix` how to need less.
pub fn check_memory(bytes: Option<u128>, what: impl FnOnce() -> String, fix: &str) -> Result<()> {
    let limit = memory_limit() as u128;
    match bytes {
        Some(b) if b <= limit => Ok(()),
        b => Err(Error::InvalidSampler(format!(
            "{} would need {} of memory; this machine has {}; {fix}",
            what(),
            b.map_or_else(|| "more than 2^128 bytes".to_string(), gib),
            gib(limit)
        ))),
    }
}

/// `a × b × …` in u128, None on overflow.
pub fn product(factors: &[u128]) -> Option<u128> {
    factors.iter().try_fold(1u128, |acc, &f| acc.checked_mul(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_axes_are_limited() {
        assert_eq!(time_points("m", 0.0, 20.0).unwrap(), 21);
        assert_eq!(time_points("m", 1850.0, 1850.0).unwrap(), 1);
        for (a, b) in [(0.0, 1e12), (0.0, 1e308), (-1e308, 1e308), (0.0, f64::INFINITY), (0.0, f64::NAN), (5.0, 1.0)] {
            let e = time_points("model 'x': t_end", a, b).unwrap_err();
            assert!(e.is_bad_input() && e.to_string().contains("t_end"), "{e}");
        }
    }

    #[test]
    fn memory_needs_are_checked_without_overflow() {
        assert!(memory_limit() > 1 << 20);
        assert!(check_memory(Some(1024), || "x".into(), "fix").is_ok());
        let e = check_memory(product(&[u64::MAX as u128, u64::MAX as u128, 8]), || "the chain".into(), "use thin")
            .unwrap_err()
            .to_string();
        assert!(e.contains("the chain") && e.contains("2^128") && e.contains("use thin"), "{e}");
        let e = check_memory(Some(1 << 60), || "x".into(), "fix").unwrap_err().to_string();
        assert!(e.contains("1073741824.00 GiB"), "{e}");
    }
}
