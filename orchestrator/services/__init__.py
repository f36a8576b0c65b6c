"""The gRPC servicers: thin adapters between the wire contract and the engine."""
