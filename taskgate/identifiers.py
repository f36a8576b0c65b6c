r"""The shape of the ids clients send (API.md), checked the same way by the gateway and the orchestrator.

Task, workflow, session, approval and run ids, and the request ids clients send in
``X-Request-ID``, are 1..128 characters of ``[A-Za-z0-9:_\-.]``. The whole value must match:
``re.match`` with ``$`` would let ``"abc\n"`` through, since ``$`` also matches before a final
newline.
"""

import re

ID_PATTERN = re.compile(r"[A-Za-z0-9:_\-.]{1,128}")
ID_RULE = "must match ^[A-Za-z0-9:_\\-.]{1,128}$"


def is_valid_id(value: object) -> bool:
    """Return whether a value is a string with the shape of an id."""
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None
