"""Names that carry caller identity between the gateway and the orchestrator.

The same names serve as gRPC metadata keys and as HTTP headers to the admin stream server
(HTTP header names are case-insensitive, gRPC metadata keys are lower case).
"""

SERVICE_TOKEN = "x-taskgate-service-token"  # noqa: S105 - a header name, not a secret
USER_ID = "x-taskgate-user-id"
TENANT_ID = "x-taskgate-tenant-id"
ROLE = "x-taskgate-role"
API_KEY = "x-api-key"
REQUEST_ID = "x-request-id"
TRACEPARENT = "traceparent"
