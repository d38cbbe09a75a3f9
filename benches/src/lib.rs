//! vixp benchmarks.
