"""The simulated agent's arithmetic: pathological questions are answered or declined within a bounded work.

Work is asserted through the step counter (``ArithmeticBudget``), never through elapsed time.
"""

import pytest

from orchestrator.runners.arithmetic import MAX_QUESTION_CHARACTERS
from orchestrator.runners.arithmetic import MAX_STEPS
from orchestrator.runners.arithmetic import ArithmeticBudget
from orchestrator.runners.arithmetic import answer_arithmetic
from orchestrator.runners.simulated_answers import compose_answer
from taskgate.task_rules import MAX_QUERY_CHARACTERS


def answer(query: str) -> tuple[str | None, ArithmeticBudget]:
    budget = ArithmeticBudget()
    found = answer_arithmetic(query, budget)
    return (found.text if found else None), budget


@pytest.mark.parametrize(
    "query",
    [
        "1+1a" * 2500,
        "What is " + "(" * 5000 + "1+1" + ")" * 5000 + "?",
        "What is " + "9" * 10_000 + " + 1?",
        "What is " + "+".join(["1"] * 5000) + "?",
        "What is " + "1 plus " * 1500 + "1?",
    ],
)
def test_a_question_longer_than_the_limit_is_declined_unread(query):
    assert len(query) > MAX_QUESTION_CHARACTERS

    text, budget = answer(query)

    assert text is None
    assert budget.steps == 0


@pytest.mark.parametrize(
    "query",
    [
        # Many runs of digits: the rest of the question is never filler, whichever run is tried.
        ("1+1a" * 500)[:MAX_QUESTION_CHARACTERS],
        ("1+1 a" * 500)[:MAX_QUESTION_CHARACTERS],
        ("1 x " * 500)[:MAX_QUESTION_CHARACTERS],
        ("2 times " * 500)[:MAX_QUESTION_CHARACTERS],
        # Out of range, too large an exponent, too long an expression.
        "What is " + "9" * 190 + " + 1?",
        "What is 9**9**9?",
        "What is 9^9^9?",
        "What is 10^18 * 10^18?",
        "What is " + "(" * 99 + "1+1" + ")" * 99 + "?",
        "What is " + "+".join(["1"] * 150) + "?",
    ],
)
def test_pathological_questions_within_the_length_limit_are_declined_within_the_budget(query):
    text, budget = answer(query)

    assert text is None
    assert 0 < budget.steps <= MAX_STEPS
    assert not budget.exhausted


@pytest.mark.parametrize(
    ("query", "starts_with"),
    [
        ("What is " + "(" * 90 + "1+1" + ")" * 90 + "?", "1 + 1 = 2."),
        ("What is " + "+".join(["1"] * 99) + "?", " + ".join(["1"] * 99) + " = 99."),
        ("What is 12345678901234567 + 1?", "12345678901234567 + 1 = 12345678901234568."),
        ("What is 2^2^3?", "2^2^3 = 256."),
        ("What is 1 + " + "-" * 150 + "1?", "1 + "),
    ],
)
def test_large_but_simple_expressions_are_still_answered_within_the_budget(query, starts_with):
    text, budget = answer(query)

    assert text is not None
    assert text.startswith(starts_with)
    assert budget.steps <= MAX_STEPS


def test_the_longest_question_allowed_never_reaches_the_budget():
    # The most steps a question can cost: every pass over the longest text allowed, then the
    # longest expression with one node per character or so.
    query = "what is " + "+".join(["1"] * 100) + " " + "please " * 100
    query = query[:MAX_QUESTION_CHARACTERS]

    _, budget = answer(query)

    assert len(query) == MAX_QUESTION_CHARACTERS
    assert budget.steps <= MAX_STEPS


def test_work_past_the_budget_declines_the_question():
    question = "What is 2+2?"
    assert answer_arithmetic(question, ArithmeticBudget()) is not None

    small = ArithmeticBudget(limit=len(question) * 3)
    assert answer_arithmetic(question, small) is None
    assert small.exhausted


def test_a_budget_counts_the_work_of_every_question_given_to_it():
    budget = ArithmeticBudget()
    answer_arithmetic("What is 6*7?", budget)
    spent = budget.steps

    assert 0 < spent < MAX_STEPS
    assert answer_arithmetic("What is 6*7?", budget) is not None
    assert budget.steps == 2 * spent


def test_the_longest_query_gets_a_templated_answer():
    query = ("1+1a" * MAX_QUERY_CHARACTERS)[:MAX_QUERY_CHARACTERS]

    assert compose_answer(query).endswith("does not consult a language model.)")
