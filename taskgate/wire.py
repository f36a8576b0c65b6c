"""The names on the wire between the gateway and the orchestrator, defined once for both.

The gRPC metadata keys; the identity and correlation ones also serve as HTTP headers to the admin
stream server (HTTP header names are case-insensitive, gRPC metadata keys are lower case), whose
paths are here too.
"""

SERVICE_TOKEN = "x-taskgate-service-token"  # noqa: S105 - a header name, not a secret
USER_ID = "x-taskgate-user-id"
TENANT_ID = "x-taskgate-tenant-id"
ROLE = "x-taskgate-role"
# The API key a forwarded caller used (absent for an access token) and its scopes, space-separated
# (absent or empty: full access), so the orchestrator checks scopes and records the key itself.
API_KEY_ID = "x-taskgate-api-key-id"
SCOPES = "x-taskgate-scopes"
API_KEY = "x-api-key"
REQUEST_ID = "x-request-id"
TRACEPARENT = "traceparent"
# Trailing metadata of an INVALID_ARGUMENT naming the invalid request field; the gateway puts it
# in the error body's details.
INVALID_FIELD = "taskgate-invalid-field"
# Trailing metadata of an error a client must tell apart from the others of its status code: its
# snake_case reason, which the gateway makes the HTTP error body's ``code``.
ERROR_CODE = "taskgate-error-code"
# FAILED_PRECONDITION: the session has an active turn and the submission asked to be refused then.
SESSION_BUSY = "session_busy"
# PERMISSION_DENIED: the caller's API key lacks a scope; MISSING_SCOPE (trailing metadata) names it.
INSUFFICIENT_SCOPE = "insufficient_scope"
MISSING_SCOPE = "taskgate-missing-scope"
# RESOURCE_EXHAUSTED: a direct gRPC caller (an API key, not the gateway) is over a rate limit. The
# trailing metadata also carries RETRY_AFTER (seconds), the window that refused and whose it is,
# and the rate-limit fields the gateway sends as headers, lower case (x-ratelimit-limit-minute…).
RATE_LIMITED = "rate_limited"
# Also sent with any other refusal the client may retry later (a throttled login, a full password
# queue): the whole seconds to wait, which the gateway sends as the HTTP Retry-After header.
RETRY_AFTER = "retry-after"
RATE_LIMIT_WINDOW = "taskgate-rate-limit-window"
RATE_LIMIT_COUNTED_PER = "taskgate-rate-limit-counted-per"
# RESOURCE_EXHAUSTED: too many consecutive failed logins for the email; try again after RETRY_AFTER.
LOGIN_THROTTLED = "login_throttled"
# FAILED_PRECONDITION: the user holds as many active API keys as allowed.
API_KEY_LIMIT = "api_key_limit"
# RESOURCE_EXHAUSTED: the caller's token (per minute) or cost (per UTC day) budget is used up.
TOKEN_BUDGET_EXCEEDED = "token_budget_exceeded"  # noqa: S105 - an error code, not a secret
COST_BUDGET_EXCEEDED = "cost_budget_exceeded"
BUDGET_ERROR_CODES = (TOKEN_BUDGET_EXCEEDED, COST_BUDGET_EXCEEDED)
# Trailing metadata of a budget refusal: seconds until it may succeed, and the budget that refused
# it (its window ``tokens_minute`` | ``cost_day``, whose it is ``user`` | ``key``, its limit, what
# was used, and the Unix time its window resets). The gateway makes them headers of its 429.
BUDGET_WINDOW = "taskgate-budget-window"
BUDGET_SCOPE = "taskgate-budget-scope"
BUDGET_LIMIT = "taskgate-budget-limit"
BUDGET_USED = "taskgate-budget-used"
BUDGET_RESET = "taskgate-budget-reset"
# Every reason the orchestrator sends in ERROR_CODE; the gateway passes on no other.
ERROR_CODES = (
    SESSION_BUSY,
    INSUFFICIENT_SCOPE,
    RATE_LIMITED,
    LOGIN_THROTTLED,
    API_KEY_LIMIT,
    *BUDGET_ERROR_CODES,
)

# The admin stream server's event streams, as Server-Sent Events and over WebSocket.
ADMIN_SSE_PATH = "/stream/sse"
ADMIN_WEBSOCKET_PATH = "/stream/ws"
ADMIN_TASK_FEED_PATH = "/stream/tasks"
