"""The admin HTTP server: health and the SSE event stream, in the orchestrator's event loop."""
