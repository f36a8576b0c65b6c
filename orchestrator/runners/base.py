"""The runner interface: a runner does one task's work, reporting through its run context."""

import abc
import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class SessionTurn:
    """One earlier exchange of the task's session: what was asked and what was answered."""

    query: str
    result: str


@dataclasses.dataclass(frozen=True)
class RunTask:
    """What a runner is asked to do."""

    workflow_id: str
    query: str
    mode: str
    model_tier: str
    context: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    history: tuple[SessionTurn, ...] = ()

    @property
    def requires_approval(self) -> bool:
        """Whether the task was submitted with ``require_approval`` true (top level or in its context)."""
        return self.options.get("require_approval") is True or self.context.get("require_approval") is True


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What a finished run produced and what it cost."""

    result_text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    model_used: str
    provider: str

    @property
    def total_tokens(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens


class RunContext(abc.ABC):
    """A runner's view of the engine while it works on one task."""

    @property
    @abc.abstractmethod
    def task(self) -> RunTask:
        """The task being run."""

    @abc.abstractmethod
    async def emit(
        self, event_type: str, message: str = "", payload: Mapping[str, Any] | None = None, agent_id: str = ""
    ) -> None:
        """Record an event of the task; it is stored before any watcher sees it."""

    @abc.abstractmethod
    async def checkpoint(self) -> None:
        """Give the engine a say between two steps (where pause and cancel take effect).

        It may hold the run while the task is paused, or raise to end it (cancelled, or out of
        time); a runner lets that exception through.
        """

    @abc.abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Wait between steps; the engine may end the wait early by raising (cancelled, or out of time)."""

    @abc.abstractmethod
    async def report_progress(self, fraction: float) -> None:
        """Record how far the run is, 0..1."""

    async def request_approval(
        self, step: str, proposed_action: Mapping[str, Any], reason: str
    ) -> Mapping[str, Any]:
        """Have a human approve an action before the run carries it out; return the action to carry out.

        ``step`` names the point of the run that asks (one approval per step and task). When the
        step was approved, this returns the approved action (the approver may have changed it).
        Otherwise the engine ends this run here, without holding anything, and the task waits for
        the decision; once approved it runs again from its first step (docs/internals.md, "Approvals").
        """
        raise NotImplementedError("this run context does not support approvals")


class Runner(abc.ABC):
    """Does the work of a task."""

    @abc.abstractmethod
    async def run(self, ctx: RunContext) -> RunResult:
        """Run ``ctx.task`` to the end and return its result; raise to fail the task."""
