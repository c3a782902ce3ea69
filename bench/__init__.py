"""Benchmarks: `make bench` or `python -m bench [name ...]`. Figures are printed as tables, never asserted."""
