"""JSON response bodies: orjson, with the standard library for what orjson cannot write.

orjson writes compact UTF-8 (what ``json.dumps(ensure_ascii=False)`` writes, without the spaces)
several times faster. It refuses integers beyond 64 bits and keys that are not strings, which a
client's own ``context`` may hold: such a body is written by ``json`` instead, so every value the
gateway answered before is answered still.
"""

import json
from typing import Any

import falcon.media
import orjson


def dumps(value: Any) -> bytes:
    """Return a value as JSON bytes."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, ensure_ascii=False).encode()


def media_handler() -> falcon.media.JSONHandler:
    """Return Falcon's JSON handler writing with ``dumps`` (requests are still read by ``json``)."""
    return falcon.media.JSONHandler(dumps=dumps)
