"""Rate limiting at the gateway's edge: sliding windows per caller, shared through Redis."""
