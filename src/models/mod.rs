//! Built-in models: toy densities for tests and benchmarks, and climate models.

pub mod toy;
