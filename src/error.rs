//! One error type for the whole crate. Every message names the bad input and, where
//! there is one, the way out.

use std::path::PathBuf;

/// Errors raised by climcal. Bad-input variants map to CLI exit code 2
/// ([`Error::is_bad_input`]); the rest are run failures (exit code 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A prior or distribution was given impossible parameters (σ ≤ 0, lower ≥ upper, …).
    #[error("invalid distribution {dist}: {reason}")]
    InvalidDistribution { dist: String, reason: String },

    /// A parameter definition is wrong (duplicate name, transform that does not fit the prior, …).
    #[error("parameter '{name}': {reason}")]
    InvalidParameter { name: String, reason: String },

    /// Observations with NaN/inf values or non-positive uncertainties, unsorted times, ….
    #[error("observation '{variable}': {reason}")]
    InvalidObservation { variable: String, reason: String },

    /// Two arrays that must have the same length do not.
    #[error("length mismatch for {what}: expected {expected}, found {found}")]
    LengthMismatch { what: String, expected: usize, found: usize },

    /// Walker count or sampler settings that cannot work.
    #[error("{0}")]
    InvalidSampler(String),

    /// Initial walkers whose log-probability is −∞ or NaN.
    #[error("{n} initial walker(s) have log-probability -inf or NaN (outside the prior support or the model failed): walkers {walkers:?}; fix the initial positions or use init = \"prior\"")]
    BadInitialPositions { n: usize, walkers: Vec<usize> },

    /// A model failed to run. Inside a sampler this becomes −∞ for that walker.
    #[error("model error: {0}")]
    Model(String),

    /// The run file (TOML) is wrong.
    #[error("config error: {0}")]
    Config(String),

    /// A problem with a chain file (missing, corrupt, existing, mismatched).
    #[error("chain file {path}: {reason}")]
    ChainFile { path: PathBuf, reason: String },

    /// Data file reading errors (CSV).
    #[error("data file {path}: {reason}")]
    Data { path: PathBuf, reason: String },

    /// A feature that this build does not include.
    #[error("{0}")]
    Unsupported(String),

    /// MPI set-up problems (e.g. a launcher from another MPI implementation).
    #[error("MPI: {0}")]
    Mpi(String),

    /// The run was interrupted (Ctrl-C / SIGTERM) after its checkpoint was written.
    #[error("interrupted: {0}")]
    Interrupted(String),

    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// True when the error comes from what the user gave (config, data, arguments):
    /// the CLI exits with code 2 for these and 1 for the rest.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::InvalidDistribution { .. }
                | Error::InvalidParameter { .. }
                | Error::InvalidObservation { .. }
                | Error::LengthMismatch { .. }
                | Error::InvalidSampler(_)
                | Error::BadInitialPositions { .. }
                | Error::Config(_)
                | Error::ChainFile { .. }
                | Error::Data { .. }
                | Error::Unsupported(_)
                | Error::Mpi(_)
        )
    }

    pub(crate) fn dist(dist: &str, reason: impl Into<String>) -> Self {
        Error::InvalidDistribution { dist: dist.to_string(), reason: reason.into() }
    }
}

/// Crate-wide result alias.
pub type Result<T> = std::result::Result<T, Error>;
