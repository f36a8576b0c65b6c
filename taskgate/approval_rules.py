"""What an approval decision may hold, checked alike by the gateway (400) and the orchestrator."""

MAX_FEEDBACK_CHARACTERS = 2000
# A modified action, as serialized JSON.
MAX_ACTION_BYTES = 64 * 1024
