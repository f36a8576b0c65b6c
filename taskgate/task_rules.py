"""What a task request may hold, checked alike by the gateway (400) and the orchestrator."""

MODES = ("simple", "standard", "complex", "supervisor")
MODEL_TIERS = ("small", "medium", "large")
RESEARCH_STRATEGIES = ("quick", "standard", "deep", "academic")
MAX_QUERY_CHARACTERS = 10_000
# A task's context (and a schedule's task_context) as serialized JSON.
MAX_CONTEXT_BYTES = 64 * 1024
# A model or provider override.
MAX_OVERRIDE_CHARACTERS = 128
MAX_TIMEOUT_SECONDS = 86_400
# The reason given when a task or a schedule is paused, resumed or cancelled.
MAX_REASON_CHARACTERS = 1000

# What a task submitted to a session with an active turn (QUEUED, RUNNING, PAUSED or waiting for
# an approval) does, by LangGraph's names: ``enqueue`` waits for that turn and sees its answer,
# ``reject`` is refused (session_busy), ``interrupt`` cancels that turn, ``rollback`` cancels it
# and removes it from the session's history. Exact lower-case names only; absent means enqueue.
MULTITASK_STRATEGIES = ("enqueue", "reject", "interrupt", "rollback")
DEFAULT_MULTITASK_STRATEGY = "enqueue"

# How long an approval a task asks for may wait for a decision, when the task sets it. The same
# range as the deployment's default (TASKGATE_APPROVAL_TIMEOUT_SECONDS), so a task can ask for any
# wait the deployment could be configured with: from a second (tests, and tools that must answer
# now) to 30 days (a decision waiting across holidays), past which a waiting task is abandoned.
MIN_APPROVAL_TIMEOUT_SECONDS = 1
MAX_APPROVAL_TIMEOUT_SECONDS = 2_592_000
