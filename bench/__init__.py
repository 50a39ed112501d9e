"""Benchmarks of the real bot process against the loopback fakes: `python -m bench`.

Not tests: nothing here asserts a timing. See BENCHMARKS.md for the last full run.
"""
