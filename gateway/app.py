"""The one place the gateway's Falcon app is wired: middleware, routes, error handling."""

import dataclasses
import ssl

import falcon
import grpc

from gateway import json_body
from gateway.access_tokens import AccessTokenVerifier
from gateway.admin_stream import AdminStreamClient
from gateway.admin_websocket import AdminWebSocketClient
from gateway.api_key_validator import ApiKeyValidator
from gateway.caller_state import CallerState
from gateway.caller_state import caller_limit_middleware
from gateway.errors import handle_rpc_error
from gateway.errors import handle_unexpected_error
from gateway.middleware.access_log import AccessLogMiddleware
from gateway.middleware.auth import AuthMiddleware
from gateway.middleware.auth_failures import auth_failure_middleware
from gateway.middleware.body_limit import BodyLimitMiddleware
from gateway.middleware.cors import CorsMiddleware
from gateway.middleware.request_id import RequestIdMiddleware
from gateway.middleware.request_metrics import RequestMetricsMiddleware
from gateway.middleware.scopes import ScopeMiddleware
from gateway.middleware.security_headers import SecurityHeadersMiddleware
from gateway.openai_errors import serialize_error_by_path
from gateway.orchestrator_client import OrchestratorClient
from gateway.resources.approvals import ApprovalDecisionResource
from gateway.resources.approvals import ApprovalsResource
from gateway.resources.auth import ApiKeyResource
from gateway.resources.auth import ApiKeysResource
from gateway.resources.auth import CurrentUserResource
from gateway.resources.auth import LoginResource
from gateway.resources.auth import RefreshResource
from gateway.resources.auth import RegisterResource
from gateway.resources.console import ConsoleResource
from gateway.resources.docs_page import CONTENT_SECURITY_POLICY
from gateway.resources.docs_page import DocsPageResource
from gateway.resources.health import HealthResource
from gateway.resources.health import ReadinessResource
from gateway.resources.metrics import MetricsResource
from gateway.resources.openai_completions import ChatCompletionsResource
from gateway.resources.openai_completions import CompletionsResource
from gateway.resources.openai_models import ModelResource
from gateway.resources.openai_models import ModelsResource
from gateway.resources.openapi import OpenApiResource
from gateway.resources.schedules import ScheduleResource
from gateway.resources.schedules import SchedulesResource
from gateway.resources.search import SearchResource
from gateway.resources.sessions import SessionResource
from gateway.resources.sessions import SessionsResource
from gateway.resources.stats import StatsResource
from gateway.resources.stream import StreamOpener
from gateway.resources.stream import StreamResource
from gateway.resources.stream import TaskFeedResource
from gateway.resources.stream_websocket import StreamWebSocketResource
from gateway.resources.task_control import TaskControlResource
from gateway.resources.tasks import TaskResource
from gateway.resources.tasks import TasksResource
from gateway.settings import GatewaySettings
from gateway.websocket_relay import UpgradableApp

# The routes whose resource is built from the orchestrator client alone: path, resource class, and
# the suffix of its responders where one class answers several paths (falcon's suffixed responders).
_ORCHESTRATOR_ROUTES = (
    # Tasks, their control, timeline and streams.
    ("/api/v1/tasks", TasksResource, None),
    ("/api/v1/tasks/stream", TasksResource, "stream"),
    ("/api/v1/tasks/{task_id}", TaskResource, None),
    ("/api/v1/tasks/{task_id}/events", TaskResource, "events"),
    ("/api/v1/tasks/{task_id}/timeline", TaskResource, "timeline"),
    ("/api/v1/tasks/{task_id}/stream", TaskResource, "stream"),
    ("/api/v1/tasks/{task_id}/cancel", TaskControlResource, "cancel"),
    ("/api/v1/tasks/{task_id}/pause", TaskControlResource, "pause"),
    ("/api/v1/tasks/{task_id}/resume", TaskControlResource, "resume"),
    ("/api/v1/tasks/{task_id}/control-state", TaskControlResource, "state"),
    # Approvals (human in the loop).
    ("/api/v1/approvals", ApprovalsResource, None),
    ("/api/v1/approvals/decision", ApprovalDecisionResource, None),
    # Sessions, search and stats.
    ("/api/v1/sessions", SessionsResource, None),
    ("/api/v1/sessions/{session_id}", SessionResource, None),
    ("/api/v1/sessions/{session_id}/history", SessionResource, "history"),
    ("/api/v1/sessions/{session_id}/events", SessionResource, "events"),
    ("/api/v1/sessions/{session_id}/export", SessionResource, "export"),
    ("/api/v1/search", SearchResource, None),
    ("/api/v1/stats", StatsResource, None),
    # Schedules.
    ("/api/v1/schedules", SchedulesResource, None),
    ("/api/v1/schedules/{schedule_id}", ScheduleResource, None),
    ("/api/v1/schedules/{schedule_id}/pause", ScheduleResource, "pause"),
    ("/api/v1/schedules/{schedule_id}/resume", ScheduleResource, "resume"),
    ("/api/v1/schedules/{schedule_id}/trigger", ScheduleResource, "trigger"),
    ("/api/v1/schedules/{schedule_id}/runs", ScheduleResource, "runs"),
    # Accounts and API keys (``/api/v1/auth/me`` also needs the tier limits).
    ("/api/v1/auth/register", RegisterResource, None),
    ("/api/v1/auth/login", LoginResource, None),
    ("/api/v1/auth/refresh", RefreshResource, None),
    ("/api/v1/auth/api-keys", ApiKeysResource, None),
    ("/api/v1/auth/api-keys/{key_id}", ApiKeyResource, None),
)


@dataclasses.dataclass(frozen=True)
class Dependencies:
    """The gateway's connections to the outside; a test passes its own objects for any of them.

    ``orchestrator`` answers the unary calls (``OrchestratorClient``'s methods), ``api_keys``
    resolves API keys to principals, ``admin_stream`` opens upstream event streams,
    ``caller_state`` holds rate-limit windows and idempotency records (Redis or in-process).
    """

    orchestrator: OrchestratorClient
    api_keys: ApiKeyValidator
    admin_stream: StreamOpener
    caller_state: CallerState | None = None

    @classmethod
    def from_settings(
        cls,
        settings: GatewaySettings,
        *,
        orchestrator: OrchestratorClient | None = None,
        api_keys: ApiKeyValidator | None = None,
        admin_stream: StreamOpener | None = None,
        caller_state: CallerState | None = None,
    ) -> "Dependencies":
        """Build the real dependencies, keeping any replacement given; the key cache wraps orchestrator."""
        if orchestrator is None:
            orchestrator = OrchestratorClient(
                settings.orchestrator_addr,
                settings.service_token,
                settings.upstream_timeout_seconds,
                tls=settings.tls,
            )
        if api_keys is None:
            api_keys = ApiKeyValidator(
                orchestrator,
                settings.api_key_cache_seconds,
                rejection_ttl_seconds=settings.api_key_rejection_cache_seconds,
            )
        if admin_stream is None:
            admin_stream = AdminStreamClient(
                settings.admin_url,
                settings.service_token,
                settings.upstream_timeout_seconds,
                ssl_context=_admin_ssl_context(settings),
            )
        if caller_state is None:
            caller_state = CallerState.from_settings(settings)
        return cls(
            orchestrator=orchestrator, api_keys=api_keys, admin_stream=admin_stream, caller_state=caller_state
        )


def _admin_ssl_context(settings: GatewaySettings) -> ssl.SSLContext | None:
    """Return the TLS context of the admin stream server's clients (taskgate.tls), None over http."""
    return settings.tls.ssl_context() if settings.tls else None


_ROUTE_SUFFIXES = {path: suffix for path, _, suffix in _ORCHESTRATOR_ROUTES if suffix}


def create_app(settings: GatewaySettings, deps: Dependencies | None = None) -> falcon.App:
    """Return the gateway's WSGI app; without ``deps`` it connects to the configured orchestrator."""
    if deps is None:
        deps = Dependencies.from_settings(settings)
    caller_state = deps.caller_state or CallerState.from_settings(settings)
    app = UpgradableApp(
        middleware=[
            RequestIdMiddleware(),
            AccessLogMiddleware(),
            RequestMetricsMiddleware(),
            SecurityHeadersMiddleware(
                settings.security_headers, CONTENT_SECURITY_POLICY, settings.trusted_proxies
            ),
            # A preflight is answered here, before a body is read or a credential asked for.
            CorsMiddleware(settings.cors_origins, _ROUTE_SUFFIXES),
            BodyLimitMiddleware(settings.max_body_bytes),
            # Credentials from addresses with too many failed authentications are refused unchecked.
            *auth_failure_middleware(settings, caller_state.limiter, deps.api_keys),
            AuthMiddleware(
                deps.api_keys,
                AccessTokenVerifier(settings.jwt_secret, settings.jwt_issuer),
                skip_auth=settings.skip_auth,
            ),
            ScopeMiddleware(),
            # Rate limiting and then idempotency, both keyed by the caller authentication found.
            *caller_limit_middleware(settings, caller_state),
        ]
    )
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = json_body.media_handler()
    # The OpenAI-compatible routes (/v1/) answer errors in OpenAI's shape, every other the gateway's.
    app.set_error_serializer(serialize_error_by_path)
    app.add_error_handler(Exception, handle_unexpected_error)
    app.add_error_handler(grpc.RpcError, handle_rpc_error)

    health = HealthResource()
    readiness = ReadinessResource(deps.orchestrator, caller_state.redis)
    for path in ("/health", "/healthz"):
        app.add_route(path, health)
    for path in ("/readiness", "/ready", "/readyz"):
        app.add_route(path, readiness)
    app.add_route("/openapi.json", OpenApiResource())
    app.add_route("/docs", DocsPageResource())
    # The web console: its index page at /ui and /ui/, its files below /ui/.
    console = ConsoleResource()
    app.add_route("/ui", console)
    app.add_route("/ui/{file:path}", console)
    app.add_route("/metrics", MetricsResource(settings.metrics_token))
    for path, resource_class, suffix in _ORCHESTRATOR_ROUTES:
        app.add_route(path, resource_class(deps.orchestrator), suffix=suffix)
    app.add_route("/api/v1/auth/me", CurrentUserResource(deps.orchestrator, settings.rate_limit_tiers))
    app.add_route(
        "/api/v1/stream/sse", StreamResource(deps.admin_stream, settings.stream_write_timeout_seconds)
    )
    app.add_route(
        "/api/v1/stream/tasks", TaskFeedResource(deps.admin_stream, settings.stream_write_timeout_seconds)
    )
    websocket_upstream = AdminWebSocketClient(
        settings.admin_url,
        settings.service_token,
        settings.upstream_timeout_seconds,
        ssl_context=_admin_ssl_context(settings),
    )
    app.add_route(
        "/api/v1/stream/ws",
        StreamWebSocketResource(websocket_upstream, settings.stream_write_timeout_seconds),
    )
    # The OpenAI-compatible API.
    app.add_route("/v1/models", ModelsResource())
    app.add_route("/v1/models/{model}", ModelResource())
    completion_args = (deps.orchestrator, deps.admin_stream, settings.stream_write_timeout_seconds)
    app.add_route("/v1/chat/completions", ChatCompletionsResource(*completion_args))
    app.add_route("/v1/completions", CompletionsResource(*completion_args))
    return app
