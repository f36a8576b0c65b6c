"""Keep credentials out of log lines written by code that is not ours (gunicorn's error log).

The gateway's own lines never carry a URL's query string or a header value; gunicorn's error log
can quote a request line or URI (a malformed request, an error while streaming a response), and
an event stream's URL may hold ``?api_key=`` or ``?token=``. This filter masks those values, API
keys and JWTs wherever they appear in a record's message or traceback.
"""

import logging
import re

REDACTED = "[redacted]"
_PATTERNS = (
    # A credential in a query string or form: api_key=…, token=…, access_token=…, refresh_token=…
    re.compile(r"(?i)((?:api_key|token|access_token|refresh_token)=)[^&\s'\"]*"),
    # An API key on its own (sk_… and the accepted sk-shannon-… form).
    re.compile(r"\bsk[_-][A-Za-z0-9_-]{16,}"),
    # A JWT: three base64url parts, the first a JSON header ("eyJ" is how '{"' encodes).
    re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
)


def redact(text: str) -> str:
    """Return the text with every credential value replaced by ``[redacted]``."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda match: (match.group(1) if match.groups() else "") + REDACTED, text)
    return text


class CredentialRedactingFilter(logging.Filter):
    """A logging filter that rewrites a record's message and traceback text without credentials."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place and keep it."""
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            # Standard formatters print exc_text when it is set instead of formatting exc_info again.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True
