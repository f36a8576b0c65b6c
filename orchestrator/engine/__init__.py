"""The engine: accepts tasks, runs them on a worker pool and records what happens."""
