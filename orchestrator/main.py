"""The orchestrator's entry points: ``serve`` the process, ``migrate``, and the account commands.

``taskgate/cli.py`` calls ``run_serve``, ``migrate``, ``ensure_api_key``, ``create_api_key`` and
``set_user_role``.
"""

import asyncio
import contextlib
import logging
import signal
import sqlite3
import sys
import uuid
from collections.abc import Awaitable
from collections.abc import Callable

from orchestrator.admin.app import create_admin_app
from orchestrator.admin.server import AdminServer
from orchestrator.admin.stream_metrics import StreamMetrics
from orchestrator.bus import EventBus
from orchestrator.bus import InProcessEventBus
from orchestrator.control_signals import ControlSignals
from orchestrator.control_signals import InProcessControlSignals
from orchestrator.domain.accounts import UserRecord
from orchestrator.engine.accounts import AccountEngine
from orchestrator.engine.api_keys import ApiKeyEngine
from orchestrator.engine.approvals import ApprovalEngine
from orchestrator.engine.leases import LeaseKeeper
from orchestrator.engine.scheduler import Scheduler
from orchestrator.engine.schedules import ScheduleEngine
from orchestrator.engine.sessions import SessionEngine
from orchestrator.engine.tasks import TaskEngine
from orchestrator.engine.worker_pool import WorkerPool
from orchestrator.errors import AlreadyExistsError
from orchestrator.identity import ApiKeyAuthenticator
from orchestrator.identity import CallerResolver
from orchestrator.passwords import PasswordHasher
from orchestrator.runners.base import Runner
from orchestrator.runners.simulated import SimulatedRunner
from orchestrator.server import BindError
from orchestrator.server import create_server
from orchestrator.services.auth import AuthServiceServicer
from orchestrator.settings import OrchestratorSettings
from orchestrator.settings import SettingsError
from orchestrator.settings import split_address
from orchestrator.store import open_store
from orchestrator.store.base import Store
from orchestrator.tokens import TokenIssuer
from taskgate import dev_bypass
from taskgate.api_keys import generate_api_key
from taskgate.api_keys import hash_api_key
from taskgate.api_keys import key_matches
from taskgate.api_keys import lookup_prefix
from taskgate.api_keys import normalise_api_key
from taskgate.garbage_collection import settle_after_start_up
from taskgate.json_logging import configure_logging
from taskgate.rfc3339 import utc_now

logger = logging.getLogger("orchestrator")

WORKER_SHUTDOWN_GRACE_SECONDS = 5.0
GRPC_SHUTDOWN_GRACE_SECONDS = 2.0


class StartupError(RuntimeError):
    """The orchestrator could not start; the message says which setting to look at."""


async def serve(settings: OrchestratorSettings, stop: asyncio.Event | None = None) -> None:
    """Run the orchestrator until SIGINT/SIGTERM (or ``stop`` is set), then shut down gracefully.

    Start order: store (migrated), admin server, gRPC server, worker pool; shutdown runs in
    reverse, so running tasks can finish while their watchers are still connected.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
            stack.callback(loop.remove_signal_handler, signum)

        store = await _open_migrated_store(settings)
        stack.push_async_callback(store.close)
        worker_id = _worker_id(settings)
        bus = await _open_event_bus(settings, worker_id)
        stack.push_async_callback(bus.close)
        # Task control: pause, resume and cancel reach the replica running the task through these.
        signals = await _open_control_signals(settings, worker_id)
        stack.push_async_callback(signals.close)
        pool = WorkerPool(
            store,
            bus,
            _runner(settings),
            settings.worker_concurrency,
            worker_id,
            signals,
            default_timeout_seconds=settings.task_timeout_seconds,
            lease_seconds=settings.lease_seconds,
            approval_timeout_seconds=settings.approval_timeout_seconds,
        )
        if store.single_replica:
            await pool.recover_interrupted()
        leases = LeaseKeeper(store, bus, pool, worker_id, settings.lease_seconds)
        engine = TaskEngine(store, bus, pool.wake, settings.stream_buffer, signals)
        approvals = ApprovalEngine(store, bus, pool.wake, settings.approval_timeout_seconds)
        schedules = ScheduleEngine(
            store, pool.wake, settings.schedule_min_interval_seconds, settings.schedule_max_per_user
        )
        scheduler = Scheduler(schedules, settings.scheduler_poll_seconds)
        authenticator = ApiKeyAuthenticator(store)
        stack.push_async_callback(authenticator.close)
        callers = CallerResolver(settings.service_token, authenticator)
        tokens = TokenIssuer(settings.jwt_secret, settings.jwt_issuer)
        auth = AuthServiceServicer(
            callers, AccountEngine(store, PasswordHasher(), tokens), ApiKeyEngine(store)
        )
        if settings.skip_auth:
            await _ensure_dev_bypass_user(store)

        admin = AdminServer(
            create_admin_app(
                engine,
                settings.service_token,
                StreamMetrics(bus.watcher_count),
                ping_seconds=settings.sse_ping_seconds,
                write_timeout_seconds=settings.stream_write_timeout_seconds,
            ),
            settings.admin_host,
            settings.admin_port,
            ping_seconds=settings.sse_ping_seconds,
        )
        try:
            admin_port = await admin.start()
        except OSError as ex:
            raise StartupError(
                f"cannot listen on TASKGATE_ADMIN_ADDR={settings.admin_addr}: {ex.strerror}"
            ) from ex
        stack.push_async_callback(admin.stop)

        try:
            grpc_server, grpc_port = await create_server(
                settings, engine, callers, SessionEngine(store), auth, schedules, approvals
            )
        except BindError as ex:
            raise StartupError(str(ex)) from ex
        await grpc_server.start()
        stack.push_async_callback(grpc_server.stop, GRPC_SHUTDOWN_GRACE_SECONDS)

        leases.start()
        stack.push_async_callback(leases.stop)
        pool.start()
        stack.push_async_callback(pool.stop, WORKER_SHUTDOWN_GRACE_SECONDS)
        scheduler.start()
        stack.push_async_callback(scheduler.stop)
        approval_expiry = asyncio.create_task(approvals.expire_forever(), name="approval-expiry")
        stack.push_async_callback(_cancel_and_wait, approval_expiry)

        grpc_host = split_address(settings.grpc_addr)[0]
        logger.info(
            f"orchestrator ready grpc={grpc_host}:{grpc_port} admin={settings.admin_host}:{admin_port}",
            extra={"grpc_port": grpc_port, "admin_port": admin_port, "env": settings.env},
        )
        settle_after_start_up()
        await stop.wait()
        logger.info("orchestrator stopping")
    logger.info("orchestrator stopped")


async def _cancel_and_wait(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def run_serve() -> int:
    """Read the settings and serve; return the exit status (2 for bad settings, 1 if it cannot start)."""
    try:
        settings = OrchestratorSettings.from_env()
    except SettingsError as ex:
        print(f"taskgate orchestrator: {ex}", file=sys.stderr)
        return 2
    # uvicorn logs request lines and start-up chatter at INFO; the orchestrator logs its own.
    configure_logging(settings.log_level, quiet_loggers=("uvicorn", "uvicorn.error", "uvicorn.access"))
    try:
        asyncio.run(serve(settings))
    except StartupError as ex:
        print(f"taskgate orchestrator: {ex}", file=sys.stderr)
        return 1
    return 0


def migrate(settings: OrchestratorSettings) -> None:
    """Apply the store's pending schema migrations."""
    asyncio.run(_with_store(settings, _nothing_more))


def ensure_api_key(settings: OrchestratorSettings, email: str, api_key: str, name: str = "dev") -> None:
    """Make sure the user with ``email`` exists (in a new tenant) and that ``api_key`` is one of theirs."""
    key = normalise_api_key(api_key)
    if key is None:
        raise ValueError("not a well-formed API key: expected sk_ followed by 64 hex characters")

    async def ensure(store: Store) -> None:
        user = await _user_for(store, email)
        for record, _ in await store.find_api_keys(lookup_prefix(key)):
            if key_matches(key, record.key_hash):
                return
        await store.create_api_key(user, name, lookup_prefix(key), hash_api_key(key))

    asyncio.run(_with_store(settings, ensure))


def create_api_key(settings: OrchestratorSettings, email: str, name: str) -> str:
    """Create a new API key for the user with ``email`` (created if absent) and return the key."""
    key = generate_api_key()

    async def create(store: Store) -> None:
        user = await _user_for(store, email)
        await store.create_api_key(user, name, lookup_prefix(key), hash_api_key(key))

    asyncio.run(_with_store(settings, create))
    return key


def set_user_role(settings: OrchestratorSettings, email: str, role: str) -> bool:
    """Give the user with ``email`` a role (user, admin or owner); return whether the user exists."""
    found: list[UserRecord] = []

    async def update(store: Store) -> None:
        user = await store.set_user_role(email.strip(), role)
        if user is not None:
            found.append(user)

    asyncio.run(_with_store(settings, update))
    return bool(found)


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


async def _open_migrated_store(settings: OrchestratorSettings) -> Store:
    try:
        store = await open_store(settings.database_url)
    except (OSError, sqlite3.Error) as ex:
        # The URL itself is not repeated: a database URL can carry a password.
        reason = str(ex).strip().splitlines()[0] if str(ex).strip() else type(ex).__name__
        raise StartupError(f"cannot open the database named by TASKGATE_DATABASE_URL: {reason}") from ex
    try:
        await store.migrate()
    except BaseException:
        await store.close()
        raise
    return store


async def _with_store(settings: OrchestratorSettings, action: Callable[[Store], Awaitable[None]]) -> None:
    """Open and migrate the store, run one action on it, and close it."""
    store = await _open_migrated_store(settings)
    try:
        await action(store)
    finally:
        await store.close()


async def _nothing_more(store: Store) -> None:
    """Do nothing: opening the store has already migrated it."""


async def _user_for(store: Store, email: str) -> UserRecord:
    """Return the user with this email, creating them in a new tenant when absent."""
    user = await store.find_user_by_email(email)
    if user is not None:
        return user
    try:
        return await store.create_user(email, email.split("@", 1)[0] or email)
    except AlreadyExistsError:
        # Created concurrently by another command; read the winner.
        user = await store.find_user_by_email(email)
        if user is None:
            raise
        return user


async def _open_event_bus(settings: OrchestratorSettings, origin: str) -> EventBus:
    """Return the in-process bus, or with TASKGATE_REDIS_URL the Redis Streams bus, started."""
    if settings.redis_url is None:
        return InProcessEventBus()
    # Imported only when configured: the embedded default starts without loading a Redis client.
    from orchestrator.redis_bus import RedisStreamsEventBus
    from orchestrator.redis_client import connect

    bus = RedisStreamsEventBus(connect(settings.redis_url), origin)
    try:
        await bus.start()
    except OSError as ex:
        await bus.close()
        # The URL itself is not repeated: it can carry a password.
        raise StartupError(f"cannot reach Redis named by TASKGATE_REDIS_URL: {ex}") from ex
    return bus


async def _open_control_signals(settings: OrchestratorSettings, origin: str) -> ControlSignals:
    """Return in-process control signals, or with TASKGATE_REDIS_URL the Redis pub/sub ones, started."""
    if settings.redis_url is None:
        return InProcessControlSignals()
    from orchestrator.redis_client import connect
    from orchestrator.redis_control_signals import RedisControlSignals

    signals = RedisControlSignals(connect(settings.redis_url), origin)
    try:
        await signals.start()
    except OSError as ex:
        await signals.close()
        raise StartupError(f"cannot reach Redis named by TASKGATE_REDIS_URL: {ex}") from ex
    return signals


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
