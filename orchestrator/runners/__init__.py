"""Runners: what actually does a task's work (the simulated agent now, an LLM runner later)."""
