"""taskgate: an API gateway for AI-agent work.

This package holds what the gateway and the orchestrator share: the command line, the generated
gRPC contract (``taskgate.orchestrator.v1``, generated from ``protos/``), the names on the wire
between them, how settings are read from the environment, and every rule both services check
(ids, stream parameters, request limits, accounts and API keys), plus time formatting.
"""

__version__ = "0.1.0"
