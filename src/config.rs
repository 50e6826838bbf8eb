//! The TOML run file (issue: chain file and CLI).
