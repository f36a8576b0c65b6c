"""What session requests may hold, checked alike by the gateway (400) and the orchestrator.

A session's token budget is set by the task that starts it: its ``token_budget``, or for clients
written for Shannon ``context.token_budget``; a whole number that fits the store's 64-bit column.
"""

MAX_TOKEN_BUDGET = 2**63 - 1
CONTEXT_BUDGET_KEY = "token_budget"
BUDGET_RULE = "must be a whole number of tokens, at least 1"
MAX_SEARCH_CHARACTERS = 256
DEFAULT_STATS_DAYS = 30
MAX_STATS_DAYS = 365
