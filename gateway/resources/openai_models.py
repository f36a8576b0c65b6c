"""``GET /v1/models`` and ``GET /v1/models/{model}``: the models the OpenAI-compatible routes serve.

A model id names how a task runs: ``taskgate-<tier>`` (tier small, medium or large, the
orchestrator's default mode) or ``taskgate-<tier>-<mode>`` (mode simple, standard, complex or
supervisor). The runner the orchestrator is configured with maps the tier to a real model.
"""

import dataclasses

import falcon

from gateway.openai_errors import model_not_found
from taskgate.task_rules import MODEL_TIERS
from taskgate.task_rules import MODES

MODEL_PREFIX = "taskgate-"
OWNED_BY = "taskgate"
# A fixed creation time (2026-01-01T00:00:00Z): the catalogue is part of the release, not of a run.
CREATED = 1767225600


@dataclasses.dataclass(frozen=True)
class ServedModel:
    """One model id and the task settings it stands for (an empty mode is the default mode)."""

    id: str
    model_tier: str
    mode: str = ""

    def to_dict(self) -> dict:
        """Return the model object of the OpenAI API."""
        return {"id": self.id, "object": "model", "created": CREATED, "owned_by": OWNED_BY}


SERVED_MODELS = tuple(
    [ServedModel(f"{MODEL_PREFIX}{tier}", tier) for tier in MODEL_TIERS]
    + [ServedModel(f"{MODEL_PREFIX}{tier}-{mode}", tier, mode) for tier in MODEL_TIERS for mode in MODES]
)
_BY_ID = {model.id: model for model in SERVED_MODELS}


def find_model(model_id: object) -> ServedModel | None:
    """Return the served model with this id, or None."""
    return _BY_ID.get(model_id) if isinstance(model_id, str) else None


class ModelsResource:
    """``/v1/models``: every served model."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List the served models."""
        resp.media = {"object": "list", "data": [model.to_dict() for model in SERVED_MODELS]}


class ModelResource:
    """``/v1/models/{model}``: one served model; an unknown id is 404 ``model_not_found``."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, model: str) -> None:
        """Return the model object."""
        found = find_model(model)
        if found is None:
            raise model_not_found(model)
        resp.media = found.to_dict()
