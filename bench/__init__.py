"""Benchmarks (`make bench`), never part of the test suite. Each reports ratios against a baseline run in the
same script, medians over runs. Results are written to bench/results/*.json and summarised in docs/benchmarks.md."""
