"""The simulated agent's answers: correct for simple arithmetic, templated and deterministic otherwise."""

import hashlib
import re

from orchestrator.runners.arithmetic import answer_arithmetic

_TOPIC_LENGTH = 120
_STOP_WORDS_TEXT = """
a an and are as at be but by can could do does for from have how i in is it me my of on or our please
should so tell than that the their there these this to was we what when where which who why will with
would you your about into explain describe give list make some
"""
_STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_OPENINGS = (
    "Here is a concise answer on {topic}.",
    "In short, {topic} comes down to a few points.",
    "A practical way to look at {topic} is to start from what matters most.",
)
_BODIES = (
    "The main aspects to weigh are {aspects}; each affects the outcome in a different way, so consider "
    "them together rather than one at a time.",
    "It helps to separate {aspects}: settle what is known about each, then check the assumptions that "
    "remain open.",
    "Start with {aspects}, compare the options against the goal, and prefer the simplest one that meets it.",
)
_CLOSINGS = (
    "A small, concrete first step usually teaches more than a long plan.",
    "Revisit the decision once the first results are in.",
    "If the details change, the same approach still applies.",
)
_NOTE = "(Simulated answer: taskgate's built-in agent does not consult a language model.)"


def compose_answer(query: str) -> str:
    """Return the simulated agent's answer to a query; the same query always gets the same answer."""
    arithmetic = answer_arithmetic(query)
    if arithmetic is not None:
        return arithmetic.text
    topic = _topic(query)
    choice = int.from_bytes(hashlib.sha256(query.encode("utf-8")).digest()[:4], "big")
    opening = _OPENINGS[choice % len(_OPENINGS)].format(topic=topic)
    body = _BODIES[(choice // 3) % len(_BODIES)].format(aspects=_aspects(query))
    closing = _CLOSINGS[(choice // 9) % len(_CLOSINGS)]
    return f"{opening} {body} {closing} {_NOTE}"


def _topic(query: str) -> str:
    text = " ".join(query.split()).rstrip("?!. ")
    if len(text) > _TOPIC_LENGTH:
        text = text[:_TOPIC_LENGTH].rsplit(" ", 1)[0] + "…"
    return f'"{text}"' if text else "your request"


def _aspects(query: str) -> str:
    words: list[str] = []
    seen: set[str] = set()
    for word in re.findall(r"[A-Za-z][A-Za-z\-']{2,}", query):
        lowered = word.lower()
        if lowered not in _STOP_WORDS and lowered not in seen:
            seen.add(lowered)
            words.append(word)
    # The three longest distinct words, in the order the query uses them.
    chosen = sorted(sorted(words, key=len, reverse=True)[:3], key=words.index)
    if not chosen:
        return "the goal, the constraints and the cost"
    if len(chosen) == 1:
        return f"{chosen[0]}, its constraints and its cost"
    return ", ".join(chosen[:-1]) + f" and {chosen[-1]}"
