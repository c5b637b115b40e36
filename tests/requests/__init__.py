"""Tests of the requests capability."""
