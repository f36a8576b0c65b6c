"""taskgate: an API gateway for AI-agent work.

This package holds what the gateway and the orchestrator share: the command line, the generated
gRPC contract (``taskgate.orchestrator.v1``, generated from ``protos/``), the wire names of caller
identity, API-key handling and time formatting.
"""

__version__ = "0.1.0"
