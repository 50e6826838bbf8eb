//! MPI executor (issue: MPI cluster execution).
