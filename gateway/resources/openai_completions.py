"""``POST /v1/chat/completions`` and ``POST /v1/completions``: an OpenAI request run as a task.

The task is submitted as the authenticated caller; the answer waits for the task's end by
following its events from the admin stream server (``data: [DONE]``-terminated chunks when
``stream`` is true). ``X-Session-ID`` continues a session and is returned on every answer.
"""

import time
from collections.abc import Callable
from typing import Any

import falcon

from gateway.admin_stream import StreamRequest
from gateway.caller import CallContext
from gateway.caller import call_context
from gateway.client_write_deadline import WriteDeadline
from gateway.errors import ApiError
from gateway.hooks import require_json_object
from gateway.metrics import CountedStream
from gateway.openai_stream import ChatShape
from gateway.openai_stream import CompletionChunks
from gateway.openai_stream import TextShape
from gateway.openai_stream import task_error
from gateway.openai_stream import usage
from gateway.resources.openai_requests import CompletionRequest
from gateway.resources.openai_requests import chat_completion_request
from gateway.resources.openai_requests import text_completion_request
from gateway.resources.stream import StreamOpener
from gateway.resources.tasks import TaskApi

# Only these events are needed: the deltas for a streaming answer, and the end of the stream.
_STREAMED_TYPES = ("LLM_PARTIAL", "STREAM_END")
_WAITED_TYPES = ("STREAM_END",)


class _CompletionRoute:
    """What both completion routes do; subclasses name the body mapping and the response shape."""

    id_prefix = ""
    shape = ChatShape

    def __init__(
        self, orchestrator: TaskApi, admin_stream: StreamOpener, write_timeout_seconds: float
    ) -> None:
        self._orchestrator = orchestrator
        self._admin_stream = admin_stream
        self._write_timeout_seconds = write_timeout_seconds

    def parse(self, body: dict[str, Any], session_id: str | None) -> CompletionRequest:
        """Check the body and map it to a task."""
        raise NotImplementedError

    @falcon.before(require_json_object)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Run the request as a task and answer with the completion, whole or streamed."""
        request = self.parse(req.context.json, req.get_header("X-Session-ID"))
        context = call_context(req)
        task = self._orchestrator.submit_task(request.submit, context).task
        resp.set_header("X-Session-ID", task.session_id)
        resp.set_header("X-Workflow-ID", task.workflow_id)
        shape = self.shape(f"{self.id_prefix}{task.task_id}", int(time.time()), request.model.id)
        types = _STREAMED_TYPES if request.stream else _WAITED_TYPES
        frames = self._admin_stream.open(StreamRequest(task.workflow_id, types=types), context)
        finished_task = _task_reader(self._orchestrator, task.task_id, context)
        if request.stream:
            resp.content_type = "text/event-stream"
            resp.set_header("Cache-Control", "no-cache")
            resp.set_header("X-Accel-Buffering", "no")
            chunks = CompletionChunks(frames, shape, finished_task, request.include_usage)
            resp.stream = CountedStream(WriteDeadline(chunks, req.env, self._write_timeout_seconds))
            return
        try:
            for _ in frames:
                pass
        finally:
            frames.close()
        finished = finished_task()
        error = task_error(finished)
        if error is not None:
            status, code, message = error
            raise ApiError(status, message, code)
        resp.media = shape.completion(finished.result, usage(finished))


def _task_reader(orchestrator: TaskApi, task_id: str, context: CallContext) -> Callable:
    return lambda: orchestrator.get_task(task_id, context)


class ChatCompletionsResource(_CompletionRoute):
    """``/v1/chat/completions``: the last user message is the query, earlier ones its history."""

    id_prefix = "chatcmpl-"
    shape = ChatShape

    def parse(self, body: dict[str, Any], session_id: str | None) -> CompletionRequest:
        """Check a chat completions body."""
        return chat_completion_request(body, session_id)


class CompletionsResource(_CompletionRoute):
    """``/v1/completions``: the legacy text completion, the prompt being the query."""

    id_prefix = "cmpl-"
    shape = TextShape

    def parse(self, body: dict[str, Any], session_id: str | None) -> CompletionRequest:
        """Check a legacy completions body."""
        return text_completion_request(body, session_id)
