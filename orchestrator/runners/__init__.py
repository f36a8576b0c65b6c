"""Runners: what actually does a task's work (the simulated agent, or an OpenAI-compatible LLM server)."""
