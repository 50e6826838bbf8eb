//! Point estimation on argmin (issue: point estimation).
