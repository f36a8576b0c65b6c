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
