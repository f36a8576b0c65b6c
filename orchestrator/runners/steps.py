"""A run's steps: each ends with a checkpointed event, and a resumed run skips those already done.

A runner whose steps come in a fixed order (given the task) counts them with ``RunSteps``: the
checkpoint it saves with a step's event is ``{"step": n, **state}``, and a run resumed from it
skips steps 1..n — their events are in the log already — with the runner's ``state`` (what later
steps need of earlier ones, JSON) restored.
"""

from collections.abc import Mapping
from typing import Any

from orchestrator.runners.base import RunContext

STEP_KEY = "step"


class RunSteps:
    """Counts a run's steps against the checkpoint it resumes from."""

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx
        saved = dict(ctx.task.checkpoint or {})
        self._done = int(saved.pop(STEP_KEY, 0))
        self.state: dict[str, Any] = saved
        self._index = 0

    @property
    def resumed(self) -> bool:
        """Whether an earlier attempt did some of the steps."""
        return self._done > 0

    def is_done(self, ahead: int = 1) -> bool:
        """Whether the step ``ahead`` of the last one counted was done by an earlier attempt."""
        return self._index + ahead <= self._done

    def skip(self) -> bool:
        """Count the next step; True when an earlier attempt did it (the caller does nothing)."""
        self._index += 1
        return self._index <= self._done

    async def emit(
        self,
        event_type: str,
        message: str = "",
        payload: Mapping[str, Any] | None = None,
        agent_id: str = "",
        **state: Any,
    ) -> bool:
        """Do the next step's event, saving the state with it (``state`` merged in); False if skipped."""
        if self.skip():
            return False
        self.state.update(state)
        checkpoint = {STEP_KEY: self._index, **self.state}
        await self._ctx.emit(event_type, message, payload, agent_id, checkpoint=checkpoint)
        return True
