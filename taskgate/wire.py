"""The names on the wire between the gateway and the orchestrator, defined once for both.

The gRPC metadata keys; the identity and correlation ones also serve as HTTP headers to the admin
stream server (HTTP header names are case-insensitive, gRPC metadata keys are lower case), whose
paths are here too.
"""

SERVICE_TOKEN = "x-taskgate-service-token"  # noqa: S105 - a header name, not a secret
USER_ID = "x-taskgate-user-id"
TENANT_ID = "x-taskgate-tenant-id"
ROLE = "x-taskgate-role"
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
# RESOURCE_EXHAUSTED: too many consecutive failed logins for the email; try again after RETRY_AFTER.
LOGIN_THROTTLED = "login_throttled"
# Every reason the orchestrator sends in ERROR_CODE; the gateway passes on no other.
ERROR_CODES = (SESSION_BUSY, LOGIN_THROTTLED)
# Trailing metadata of an error the client may retry later: the whole seconds to wait, which the
# gateway sends as the HTTP Retry-After header.
RETRY_AFTER = "retry-after"

# The admin stream server's event streams, as Server-Sent Events and over WebSocket.
ADMIN_SSE_PATH = "/stream/sse"
ADMIN_WEBSOCKET_PATH = "/stream/ws"
