"""The fixed user of the development bypass (``TASKGATE_SKIP_AUTH=1``, dev and test only).

With the bypass on, the gateway serves a request that brings no credential as this user, and the
orchestrator makes sure the user's account exists when it starts, so ``/api/v1/auth/me`` and the
key routes work for it too. A request that does bring a credential is authenticated as usual.
"""

USER_ID = "dev-user"
TENANT_ID = "dev-tenant"
EMAIL = "dev-user@taskgate.local"
USERNAME = "dev"
ROLE = "owner"
TIER = "free"

# The switch, read by taskgate.shared_settings and refused there outside dev and test.
NAME = "TASKGATE_SKIP_AUTH"
