"""Reliability: the platform's promises measured — crash safety, fuzzed deliveries, concurrency, privacy, access, audit, backup."""
