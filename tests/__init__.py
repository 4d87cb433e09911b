"""Test suite (a package, so its helpers have one import name: tests.fakes, tests.factories)."""
