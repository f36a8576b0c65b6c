"""Domain errors whose message is a static string written for clients.

The gRPC layer turns each kind into one status code (``orchestrator.services.status``); the
message travels as the status details, so it never carries exception text, SQL or a path.
"""


class OrchestratorError(Exception):
    """Base of the errors a client may see; ``public_message`` is safe to show."""

    default_message = "Request failed"

    def __init__(self, public_message: str | None = None) -> None:
        self.public_message = public_message or self.default_message
        super().__init__(self.public_message)


class InvalidArgumentError(OrchestratorError):
    """A request field is malformed; the message names the field."""

    default_message = "Invalid request"

    def __init__(self, field: str, public_message: str) -> None:
        self.field = field
        super().__init__(public_message)


class NotFoundError(OrchestratorError):
    """The thing is missing or belongs to someone else (the two are indistinguishable)."""

    default_message = "Not found"


class TaskNotFoundError(NotFoundError):
    """The task is missing or not the caller's."""

    default_message = "Task not found"


class SessionNotFoundError(NotFoundError):
    """The session is missing, deleted or not the caller's."""

    default_message = "Session not found"


class SessionBudgetExhaustedError(OrchestratorError):
    """The session has used its whole token budget, so it takes no more tasks."""

    default_message = "Session token budget exhausted"


class SessionTooLargeError(OrchestratorError):
    """The session is too large to be exported as one document."""

    default_message = "Session is too large to export"


class TaskStateError(OrchestratorError):
    """The task's state does not allow the request (pause a finished task, resume a running one)."""

    default_message = "The task's state does not allow this"


class SessionBusyError(TaskStateError):
    """A turn of the session is still active and the submission asked to be refused then (``reject``)."""

    default_message = "The session has a turn still running; try again when it ends"


class AlreadyExistsError(OrchestratorError):
    """Something with the same unique name exists already."""

    default_message = "Already exists"


class UnavailableError(OrchestratorError):
    """A backing service (the database) cannot be reached right now; the client may retry."""

    default_message = "The service is temporarily unavailable; try again"


class UnauthenticatedError(OrchestratorError):
    """No usable credentials came with the call."""

    default_message = "Authentication required"


# Identity: accounts and API keys.


class UserNotFoundError(NotFoundError):
    """The caller's user has no account (it was deleted, or the identity was only forwarded)."""

    default_message = "User not found"


class ApiKeyNotFoundError(NotFoundError):
    """The API key is missing or not the caller's (or, for an admin, not of the caller's tenant)."""

    default_message = "API key not found"


class PermissionDeniedError(OrchestratorError):
    """The caller is authenticated but its role does not allow the request."""

    default_message = "Permission denied"


class InsufficientScopeError(PermissionDeniedError):
    """The caller's API key lacks a scope the request needs; ``scope`` names it."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__(f"The API key lacks the scope {scope}")


class ScheduleNotFoundError(NotFoundError):
    """No such schedule, or it belongs to someone else."""

    default_message = "Schedule not found"
