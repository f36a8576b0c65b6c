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
    #: Which run of the task this is: 1, then one more after each interruption (docs/internals.md).
    attempt: int = 1
    #: The checkpoint the run resumes from, as the runner saved it (None: it starts from the beginning).
    checkpoint: Mapping[str, Any] | None = None

    @property
    def requires_approval(self) -> bool:
        """Whether the task was submitted with ``require_approval`` true (top level or in its context)."""
        return self.options.get("require_approval") is True or self.context.get("require_approval") is True


@dataclasses.dataclass(frozen=True)
class ApprovedAction:
    """A human's approval of an action a run proposed: what to carry out, and what they said."""

    #: The action to carry out: the approver's modified one if they changed it, else the proposed one.
    #: A modified action may be a string (an approver's rewritten instruction) instead of an object.
    action: Mapping[str, Any] | str
    feedback: str = ""
    modified: bool = False


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
        self,
        event_type: str,
        message: str = "",
        payload: Mapping[str, Any] | None = None,
        agent_id: str = "",
        checkpoint: Mapping[str, Any] | None = None,
    ) -> None:
        """Record an event of the task; it is stored before any watcher sees it.

        With ``checkpoint`` (the runner's state once this step is done, JSON) the event ends a step:
        the event and the state are stored together, and a run resumed after an interruption gets
        that state as ``task.checkpoint`` and goes on after the step, repeating nothing before it.
        """

    @abc.abstractmethod
    async def checkpoint(self) -> None:
        """Give the engine a say between two steps (where a pause takes effect).

        It may raise to end the run here: cancelled, out of time, or paused (the task is parked and
        resumes later from its last saved checkpoint); a runner lets that exception through.
        """

    @abc.abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Wait between steps; the engine may end the wait early (cancelled, or out of time)."""

    @abc.abstractmethod
    async def report_progress(self, fraction: float) -> None:
        """Record how far the run is, 0..1."""

    async def request_approval(
        self, step: str, proposed_action: Mapping[str, Any], reason: str
    ) -> ApprovedAction:
        """Have a human approve an action before the run carries it out; return the approval.

        ``step`` names the point of the run that asks (one approval per step and task). When the
        step was approved, this returns the decision (the action to carry out, which the approver
        may have changed, and their feedback). Otherwise the engine ends this run here, without
        holding anything, and the task waits for the decision; once approved the run resumes from
        its last checkpoint, so it asks again right here and gets the decision
        (docs/internals.md, "Approvals").
        """
        raise NotImplementedError("this run context does not support approvals")


class Runner(abc.ABC):
    """Does the work of a task."""

    @abc.abstractmethod
    async def run(self, ctx: RunContext) -> RunResult:
        """Run ``ctx.task`` to the end and return its result; raise to fail the task."""
