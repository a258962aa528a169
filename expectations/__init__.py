"""Expectations: Great Expectations suites, one per checked asset, and the code that runs them."""
