"""Idempotency-Key at the gateway's edge: a repeated request runs once, repeats replay its response."""
