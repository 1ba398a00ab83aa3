"""Reliability tests: hostile input, damaged files and faults, each with its exact outcome."""
