"""Synthetic scenarios for tests, benchmarks and what-if runs."""
