"""Request middleware, one concern per module, in the order ``gateway.app`` installs them."""
