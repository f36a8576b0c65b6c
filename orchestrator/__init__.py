"""The taskgate orchestrator: the asyncio service that owns all state and runs agent tasks.

It serves the gRPC contract of ``taskgate.orchestrator.v1`` and an admin HTTP server for live
event streams, both in one event loop. See ``docs/internals.md`` for the seams.
"""
