//! Deterministic synthetic deployment packages for tests, demos and benchmarks.
