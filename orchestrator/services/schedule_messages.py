"""Converting schedules and their runs to their protobuf messages."""

from orchestrator.domain.schedules import ACTIVE
from orchestrator.domain.schedules import PAUSED
from orchestrator.domain.schedules import ScheduleRecord
from orchestrator.domain.schedules import ScheduleRun
from orchestrator.events import compact_json
from orchestrator.services.messages import task_run_fields
from orchestrator.services.messages import timestamp
from taskgate.orchestrator.v1 import schedules_pb2

_STATUS_TO_PROTO = {
    ACTIVE: schedules_pb2.SCHEDULE_STATUS_ACTIVE,
    PAUSED: schedules_pb2.SCHEDULE_STATUS_PAUSED,
}
STATUS_FROM_PROTO = {value: name for name, value in _STATUS_TO_PROTO.items()}


def schedule_to_proto(schedule: ScheduleRecord) -> schedules_pb2.Schedule:
    """Return the Schedule message of a schedule (0 budget or timeout: none set)."""
    return schedules_pb2.Schedule(
        schedule_id=schedule.schedule_id,
        name=schedule.name,
        description=schedule.description,
        cron_expression=schedule.cron_expression,
        timezone=schedule.timezone,
        task_query=schedule.task_query,
        task_context_json=compact_json(schedule.task_context),
        max_budget_per_run_usd=schedule.max_budget_per_run_usd or 0.0,
        timeout_seconds=schedule.timeout_seconds or 0,
        status=_STATUS_TO_PROTO[schedule.status],
        user_id=schedule.user_id,
        created_at=timestamp(schedule.created_at),
        updated_at=timestamp(schedule.updated_at),
        next_run_at=timestamp(schedule.next_run_at),
        last_run_at=timestamp(schedule.last_run_at),
        total_runs=schedule.total_runs,
        successful_runs=schedule.successful_runs,
        failed_runs=schedule.failed_runs,
        paused_at=timestamp(schedule.paused_at),
        pause_reason=schedule.pause_reason,
    )


def run_to_proto(run: ScheduleRun) -> schedules_pb2.ScheduleRun:
    """Return the ScheduleRun message of a run; its duration is known once its task has ended."""
    task = run.task
    if task is None:
        # Claimed, its task not stored yet: it shows as queued.
        return schedules_pb2.ScheduleRun(
            workflow_id=run.task_id, status="QUEUED", triggered_at=timestamp(run.triggered_at)
        )
    return schedules_pb2.ScheduleRun(triggered_at=timestamp(run.triggered_at), **task_run_fields(task))
