//! PyO3 bindings (issue: Python package).
