"""The one place the orchestrator is wired: store, event bus, engines, servicers, servers.

``build_orchestrator`` opens the store (migrated), the event bus and the control signals named
by the settings (``orchestrator.backends``), and builds over them the engines, the worker pool,
the lease keeper, the scheduler, the gRPC servicers and the admin stream server.
``Orchestrator.start`` makes both servers listen and the background loops run; ``stop`` undoes
everything in reverse. A test passes its own store, bus, control signals or runner; what it
passes in, it closes itself.

``open_account_engines`` builds only the store and the account engines, for the commands that
change accounts without serving (``orchestrator.commands``), so they obey the same rules.
"""

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator
from types import TracebackType

import grpc

from orchestrator.admin.app import admin_server
from orchestrator.admin.server import AdminServer
from orchestrator.backends import StartupError
from orchestrator.backends import open_control_signals
from orchestrator.backends import open_event_bus
from orchestrator.backends import open_migrated_store
from orchestrator.bus import EventBus
from orchestrator.call_limiter import open_call_limiter
from orchestrator.call_limits import RateLimitInterceptor
from orchestrator.control_signals import ControlSignals
from orchestrator.domain.accounts import UserRecord
from orchestrator.domain.login_throttle import LoginBackoff
from orchestrator.engine.accounts import AccountEngine
from orchestrator.engine.api_keys import ApiKeyEngine
from orchestrator.engine.approvals import ApprovalEngine
from orchestrator.engine.budgets import BudgetEngine
from orchestrator.engine.leases import LeaseKeeper
from orchestrator.engine.scheduler import Scheduler
from orchestrator.engine.schedules import ScheduleEngine
from orchestrator.engine.session_export import ExportLimits
from orchestrator.engine.sessions import SessionEngine
from orchestrator.engine.tasks import TaskEngine
from orchestrator.engine.worker_pool import WorkerPool
from orchestrator.event_relay import relaying
from orchestrator.identity import ApiKeyAuthenticator
from orchestrator.identity import CallerResolver
from orchestrator.passwords import PasswordHasher
from orchestrator.runners.base import Runner
from orchestrator.runners.simulated import SimulatedRunner
from orchestrator.server import BindError
from orchestrator.server import Servicers
from orchestrator.server import create_server
from orchestrator.services.approvals import ApprovalServiceServicer
from orchestrator.services.auth import AuthServiceServicer
from orchestrator.services.events import EventServiceServicer
from orchestrator.services.schedules import ScheduleServiceServicer
from orchestrator.services.sessions import SessionServiceServicer
from orchestrator.services.tasks import TaskServiceServicer
from orchestrator.settings import OrchestratorSettings
from orchestrator.settings import split_address
from orchestrator.store.base import Store
from orchestrator.task_feed import prune_task_changes_forever
from orchestrator.tokens import TokenIssuer
from taskgate import dev_bypass
from taskgate.rate_limits.per_user import PerUserWindows
from taskgate.redis_keys import KeyNamer
from taskgate.rfc3339 import utc_now

logger = logging.getLogger("orchestrator")

GRPC_SHUTDOWN_GRACE_SECONDS = 2.0


@dataclasses.dataclass(frozen=True)
class AccountEngines:
    """What changes accounts: users and their roles, and API keys."""

    accounts: AccountEngine
    api_keys: ApiKeyEngine


@dataclasses.dataclass(frozen=True)
class Engines:
    """Every rule of the orchestrator, one engine per area; servicers and the admin app call these."""

    tasks: TaskEngine
    sessions: SessionEngine
    accounts: AccountEngine
    api_keys: ApiKeyEngine
    approvals: ApprovalEngine
    schedules: ScheduleEngine
    budgets: BudgetEngine


def build_account_engines(settings: OrchestratorSettings, store: Store) -> AccountEngines:
    """Build the account and API-key engines over a store."""
    tokens = TokenIssuer(settings.jwt_secret, settings.jwt_issuer)
    passwords = PasswordHasher(max_waiting=settings.password_queue_limit)
    backoff = LoginBackoff(
        settings.login_throttle_after_failures,
        settings.login_throttle_base_seconds,
        settings.login_throttle_max_seconds,
    )
    return AccountEngines(
        AccountEngine(store, passwords, tokens, backoff),
        ApiKeyEngine(store, settings.max_api_keys_per_user, settings.rate_limit_tiers),
    )


@contextlib.asynccontextmanager
async def open_account_engines(
    settings: OrchestratorSettings, *, store: Store | None = None
) -> AsyncIterator[AccountEngines]:
    """Open the migrated store (unless given) and yield the account engines over it; close what it opened."""
    async with contextlib.AsyncExitStack() as resources:
        if store is None:
            store = await open_migrated_store(settings)
            resources.push_async_callback(store.close)
        yield build_account_engines(settings, store)


class Orchestrator:
    """One orchestrator's parts, built by ``build_orchestrator``; ``start`` runs them and ``stop`` ends them.

    Also an async context manager: ``async with await build_orchestrator(settings) as orchestrator``
    starts it on entry and stops it on exit. ``grpc_port`` and ``admin_port`` are the bound ports
    once started (the settings may ask for port 0).
    """

    def __init__(
        self,
        settings: OrchestratorSettings,
        *,
        store: Store,
        bus: EventBus,
        engines: Engines,
        pool: WorkerPool,
        leases: LeaseKeeper,
        scheduler: Scheduler,
        servicers: Servicers,
        admin: AdminServer,
        resources: contextlib.AsyncExitStack,
        call_limits: RateLimitInterceptor | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.engines = engines
        self.pool = pool
        self.leases = leases
        self.scheduler = scheduler
        self.servicers = servicers
        self.admin = admin
        self.call_limits = call_limits
        self.grpc_port = 0
        self.admin_port = 0
        # What build_orchestrator opened, and what start started: each closed in reverse by stop.
        self._resources = resources
        self._running = contextlib.AsyncExitStack()

    async def start(self) -> None:
        """Recover interrupted tasks, make the admin and gRPC servers listen, then start working.

        Raises StartupError when a server cannot listen; whatever had started is stopped again.
        """
        try:
            await self._start()
        except BaseException:
            await self._running.aclose()
            raise
        grpc_host = split_address(self.settings.grpc_addr)[0]
        tls = _tls_mode(self.settings)
        logger.info(
            f"orchestrator ready grpc={grpc_host}:{self.grpc_port} "
            f"admin={self.settings.admin_host}:{self.admin_port} tls={tls}",
            extra={
                "grpc_port": self.grpc_port,
                "admin_port": self.admin_port,
                "env": self.settings.env,
                "tls": tls,
            },
        )

    async def stop(self) -> None:
        """Stop working and listening in the reverse order of ``start``, then close what was opened.

        Running tasks are handed back to the queue at their last checkpoint while their watchers
        are still connected, to continue on another replica (or this one when it starts again).
        """
        await self._running.aclose()
        await self._resources.aclose()

    async def __aenter__(self) -> "Orchestrator":
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _start(self) -> None:
        running = self._running
        if self.store.single_replica:
            await self.pool.recover_interrupted()
        if self.settings.skip_auth:
            await _ensure_dev_bypass_user(self.store)

        try:
            self.admin_port = await self.admin.start()
        except OSError as ex:
            raise StartupError(
                f"cannot listen on TASKGATE_ADMIN_ADDR={self.settings.admin_addr}: {ex.strerror}"
            ) from ex
        running.push_async_callback(self.admin.stop)

        try:
            grpc_server, self.grpc_port = await create_server(
                self.settings.grpc_addr, self.servicers, _grpc_credentials(self.settings), self.call_limits
            )
        except BindError as ex:
            raise StartupError(str(ex)) from ex
        await grpc_server.start()
        running.push_async_callback(grpc_server.stop, GRPC_SHUTDOWN_GRACE_SECONDS)

        self.leases.start()
        running.push_async_callback(self.leases.stop)
        self.pool.start()
        running.push_async_callback(self.pool.stop)
        self.scheduler.start()
        running.push_async_callback(self.scheduler.stop)
        approval_expiry = asyncio.create_task(self.engines.approvals.expire_forever(), name="approval-expiry")
        running.push_async_callback(_cancel_and_wait, approval_expiry)
        feed_pruning = asyncio.create_task(prune_task_changes_forever(self.store), name="task-feed-pruning")
        running.push_async_callback(_cancel_and_wait, feed_pruning)


async def build_orchestrator(
    settings: OrchestratorSettings,
    *,
    store: Store | None = None,
    bus: EventBus | None = None,
    signals: ControlSignals | None = None,
    runner: Runner | None = None,
) -> Orchestrator:
    """Build the orchestrator the settings describe, with any part given used instead of its own.

    The store, given or opened, is migrated. Nothing listens or runs until ``start``. Raises
    StartupError when the database or Redis cannot be reached.
    """
    worker_id = _worker_id(settings)
    resources = contextlib.AsyncExitStack()
    try:
        if store is None:
            store = await open_migrated_store(settings)
            resources.push_async_callback(store.close)
        else:
            await store.migrate()
        if bus is None:
            bus = await open_event_bus(settings, worker_id)
            resources.push_async_callback(bus.close)
        if settings.stream_relay_path and settings.redis_url is None:
            # Without Redis, stream processes get the events from this socket (orchestrator.event_relay).
            try:
                bus = await relaying(bus, settings.stream_relay_path, settings.service_token)
            except OSError as ex:
                raise StartupError(f"cannot listen on TASKGATE_STREAM_RELAY_PATH: {ex}") from ex
            resources.push_async_callback(bus.close)
        # Task control: pause, resume and cancel reach the replica running the task through these.
        if signals is None:
            signals = await open_control_signals(settings, worker_id)
            resources.push_async_callback(signals.close)
    except BaseException:
        await resources.aclose()
        raise

    pool = WorkerPool(
        store,
        bus,
        runner or _runner(settings),
        settings.worker_concurrency,
        worker_id,
        signals,
        default_timeout_seconds=settings.task_timeout_seconds,
        lease_seconds=settings.lease_seconds,
        approval_timeout_seconds=settings.approval_timeout_seconds,
        max_attempts=settings.max_attempts,
        poll_seconds=settings.worker_poll_seconds,
    )
    # Work queued by any replica (on PostgreSQL) wakes this pool at once; polling is the fallback.
    store.on_work_queued(pool.wake)
    account_engines = build_account_engines(settings, store)
    budgets = BudgetEngine(store, settings.rate_limit_tiers)
    engines = Engines(
        tasks=TaskEngine(store, bus, pool.wake, settings.stream_buffer, signals, budgets),
        sessions=SessionEngine(
            store, ExportLimits(settings.session_export_max_bytes, settings.session_export_max_events)
        ),
        accounts=account_engines.accounts,
        api_keys=account_engines.api_keys,
        approvals=ApprovalEngine(store, bus, pool.wake, settings.approval_timeout_seconds),
        schedules=ScheduleEngine(
            store,
            pool.wake,
            settings.schedule_min_interval_seconds,
            settings.schedule_max_per_user,
            budgets,
        ),
        budgets=budgets,
    )
    authenticator = ApiKeyAuthenticator(store)
    resources.push_async_callback(authenticator.close)
    callers = CallerResolver(settings.service_token, authenticator, settings.api_key_cache_seconds)
    call_limits = None
    if not settings.rate_limit_disabled:
        limiter = open_call_limiter(settings.redis_url, settings.redis_timeout_seconds)
        resources.push_async_callback(limiter.close)
        windows = PerUserWindows(KeyNamer(settings.service_token), settings.rate_limit_tiers)
        call_limits = RateLimitInterceptor(callers, windows, limiter, settings.rate_limit_fail_closed)
    admin = admin_server(
        engines.tasks.streams, settings, bus.watcher_count, settings.admin_host, settings.admin_port
    )
    return Orchestrator(
        settings,
        store=store,
        bus=bus,
        engines=engines,
        pool=pool,
        leases=LeaseKeeper(store, bus, pool, worker_id, settings.lease_seconds),
        scheduler=Scheduler(engines.schedules, settings.scheduler_poll_seconds),
        servicers=_servicers(engines, callers),
        admin=admin,
        resources=resources,
        call_limits=call_limits,
    )


def _grpc_credentials(settings: OrchestratorSettings) -> grpc.ServerCredentials | None:
    """Return the gRPC server's TLS credentials, None for plaintext."""
    return settings.tls.grpc_credentials() if settings.tls else None


def _tls_mode(settings: OrchestratorSettings) -> str:
    """Name how both servers speak: ``off`` (plaintext), ``on`` or ``mutual`` (client certificates)."""
    if settings.tls is None:
        return "off"
    return "mutual" if settings.tls.requires_client_cert else "on"


def _servicers(engines: Engines, callers: CallerResolver) -> Servicers:
    """Build one servicer per service over the engines."""
    return Servicers(
        tasks=TaskServiceServicer(engines.tasks, callers),
        events=EventServiceServicer(engines.tasks, callers),
        auth=AuthServiceServicer(callers, engines.accounts, engines.api_keys, engines.budgets),
        sessions=SessionServiceServicer(engines.sessions, callers),
        approvals=ApprovalServiceServicer(engines.approvals, callers),
        schedules=ScheduleServiceServicer(engines.schedules, callers),
        callers=callers,
    )


def _runner(settings: OrchestratorSettings) -> Runner:
    """Return the runner TASKGATE_RUNNER names: the simulated agent, or an OpenAI-compatible server."""
    if settings.openai is not None:
        # Imported only when configured, like the Redis clients.
        from orchestrator.runners.openai_compatible import OpenAICompatibleRunner

        return OpenAICompatibleRunner(settings.openai)
    return SimulatedRunner(settings.sim_step_seconds)


def _worker_id(settings: OrchestratorSettings) -> str:
    """Name this process's life in claims: ``<replica id>:<random>``.

    The replica id shows which replica ran a task; the random part keeps a restarted replica from
    mistaking the leases of its previous life for its own.
    """
    return f"{settings.replica_id}:{uuid.uuid4().hex[:8]}"


async def _ensure_dev_bypass_user(store: Store) -> None:
    """Make sure the account of the development bypass's fixed user exists."""
    await store.ensure_user(
        UserRecord(
            dev_bypass.USER_ID,
            dev_bypass.TENANT_ID,
            dev_bypass.EMAIL,
            dev_bypass.USERNAME,
            dev_bypass.ROLE,
            dev_bypass.TIER,
            utc_now(),
        )
    )
    logger.warning(
        "TASKGATE_SKIP_AUTH is on: requests without credentials act as the development user",
        extra={"user_id": dev_bypass.USER_ID},
    )


async def _cancel_and_wait(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
