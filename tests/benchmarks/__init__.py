"""Speed benchmarks, run by `make bench`; not tests (pytest never collects them).

Goals are measured and reported here with a same-run baseline, never asserted
in the test suite. Entry point: `python -m tests.benchmarks.run`.
"""
