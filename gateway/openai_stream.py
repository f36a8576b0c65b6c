"""OpenAI response shapes, and a task's events turned into OpenAI streaming chunks.

``ChatShape`` writes ``chat.completion`` / ``chat.completion.chunk`` objects and ``TextShape`` the
legacy ``text_completion`` ones. ``CompletionChunks`` is the body of a streaming response: it reads
the task's ``LLM_PARTIAL`` frames from the admin stream, sends one chunk per delta, then the final
chunk, the usage chunk when asked for, and ``data: [DONE]``.
"""

import json
import logging
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any

from gateway.openai_errors import openai_error_body
from taskgate.orchestrator.v1 import common_pb2
from taskgate.orchestrator.v1 import tasks_pb2

logger = logging.getLogger(__name__)

DONE_FRAME = b"data: [DONE]\n\n"
DELTA_EVENT = "thread.message.delta"
END_EVENT = "done"
# What the ``error`` of a task that did not complete is reported as, by its status.
_END_ERRORS = {
    common_pb2.TASK_STATUS_FAILED: (500, "task_failed", "The task failed"),
    common_pb2.TASK_STATUS_CANCELLED: (409, "task_cancelled", "The task was cancelled"),
    common_pb2.TASK_STATUS_TIMEOUT: (504, "task_timeout", "The task ran out of time"),
}
_MAX_ERROR_CHARACTERS = 500


def usage(task: tasks_pb2.Task) -> dict[str, int]:
    """Return the OpenAI ``usage`` object of a task's token counts."""
    return {
        "prompt_tokens": task.usage.prompt_tokens,
        "completion_tokens": task.usage.completion_tokens,
        "total_tokens": task.usage.total_tokens,
    }


def task_error(task: tasks_pb2.Task) -> tuple[int, str, str] | None:
    """Return (status, code, message) for a task that ended without completing, None when it completed.

    A task still running (its stream ended early) is reported as an upstream timeout.
    """
    if task.status == common_pb2.TASK_STATUS_COMPLETED:
        return None
    status, code, message = _END_ERRORS.get(
        task.status, (504, "upstream_timeout", "The task did not finish in time")
    )
    if task.error:
        message = f"{message}: {task.error[:_MAX_ERROR_CHARACTERS]}"
    return status, code, message


class ChatShape:
    """The chat completions objects."""

    object_name = "chat.completion"
    chunk_name = "chat.completion.chunk"

    def __init__(self, completion_id: str, created: int, model: str) -> None:
        self._id = completion_id
        self._created = created
        self._model = model

    def completion(self, text: str, task_usage: dict[str, int]) -> dict[str, Any]:
        """Return the whole answer as one ``chat.completion``."""
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
        return {**self._object(self.object_name), "choices": [choice], "usage": task_usage}

    def first_chunk(self) -> dict[str, Any] | None:
        """Return the chunk that opens the stream (the assistant's role)."""
        return self._chunk({"role": "assistant", "content": ""}, None)

    def delta_chunk(self, text: str) -> dict[str, Any]:
        """Return the chunk carrying one piece of the answer."""
        return self._chunk({"content": text}, None)

    def final_chunk(self) -> dict[str, Any]:
        """Return the chunk that ends the answer."""
        return self._chunk({}, "stop")

    def usage_chunk(self, task_usage: dict[str, int]) -> dict[str, Any]:
        """Return the last chunk: no choices, the usage."""
        return {**self._object(self.chunk_name), "choices": [], "usage": task_usage}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**self._object(self.chunk_name), "choices": [choice]}

    def _object(self, name: str) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": name,
            "created": self._created,
            "model": self._model,
            "system_fingerprint": None,
        }


class TextShape(ChatShape):
    """The legacy text completions objects (``text_completion``, streamed as the same object)."""

    object_name = "text_completion"
    chunk_name = "text_completion"

    def completion(self, text: str, task_usage: dict[str, int]) -> dict[str, Any]:
        """Return the whole answer as one ``text_completion``."""
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
        return {**self._object(self.object_name), "choices": [choice], "usage": task_usage}

    def first_chunk(self) -> dict[str, Any] | None:
        """Return nothing: a text completion stream has no role chunk."""
        return None

    def delta_chunk(self, text: str) -> dict[str, Any]:
        """Return the chunk carrying one piece of the answer."""
        return self._text_chunk(text, None)

    def final_chunk(self) -> dict[str, Any]:
        """Return the chunk that ends the answer."""
        return self._text_chunk("", "stop")

    def _text_chunk(self, text: str, finish_reason: str | None) -> dict[str, Any]:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
        return {**self._object(self.chunk_name), "choices": [choice]}


def data_frame(value: dict[str, Any]) -> bytes:
    """Return one SSE ``data:`` frame of a JSON object."""
    return b"data: " + json.dumps(value, separators=(",", ":")).encode() + b"\n\n"


def parse_frame(frame: bytes) -> tuple[str, str]:
    """Return the event name and data of an SSE frame ("" for a comment or a missing field)."""
    name, data = "", []
    for line in frame.decode("utf-8", errors="replace").splitlines():
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    return name, "\n".join(data)


def delta_of(data: str) -> str:
    """Return the text delta of a ``thread.message.delta`` frame's data ("" when it has none)."""
    try:
        body = json.loads(data)
    except ValueError:
        return ""
    delta = body.get("delta") if isinstance(body, dict) else None
    return delta if isinstance(delta, str) else ""


class CompletionChunks:
    """A streaming response body: the task's deltas as OpenAI chunks, ending with ``[DONE]``.

    ``finished_task`` reads the task once its event stream has ended, for the usage and the
    outcome. The server's ``close()`` closes the upstream event stream, iterated or not.
    """

    def __init__(
        self,
        frames: Iterable[bytes],
        shape: ChatShape,
        finished_task: Callable[[], tasks_pb2.Task],
        include_usage: bool,
    ) -> None:
        self._frames = frames
        self._shape = shape
        self._finished_task = finished_task
        self._include_usage = include_usage
        self._body = self._chunks()

    def __iter__(self) -> Iterator[bytes]:
        """Iterate the chunks."""
        return self._body

    def close(self) -> None:
        """Close the upstream event stream and stop."""
        self._body.close()
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()

    def _chunks(self) -> Iterator[bytes]:
        first = self._shape.first_chunk()
        if first is not None:
            yield data_frame(first)
        streamed = []
        for frame in self._frames:
            name, data = parse_frame(frame)
            if name == DELTA_EVENT:
                delta = delta_of(data)
                if delta:
                    streamed.append(delta)
                    yield data_frame(self._shape.delta_chunk(delta))
            elif name == END_EVENT:
                break
        task = self._finished_task()
        error = task_error(task)
        if error is not None:
            status, code, message = error
            yield data_frame(openai_error_body(status, message, code, None))
            return
        # A runner that streamed less than its answer (or nothing) sends the rest as one chunk.
        text = "".join(streamed)
        if task.result.startswith(text) and len(task.result) > len(text):
            yield data_frame(self._shape.delta_chunk(task.result[len(text) :]))
        yield data_frame(self._shape.final_chunk())
        if self._include_usage:
            yield data_frame(self._shape.usage_chunk(usage(task)))
        yield DONE_FRAME
