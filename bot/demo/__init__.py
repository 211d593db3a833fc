"""A simulated community for `qunpulse demo` and the benchmarks."""
