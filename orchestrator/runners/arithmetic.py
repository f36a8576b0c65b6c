"""Finding and safely evaluating a simple arithmetic question such as "What is 2+2?".

The simulated runner asks this of every query on the event loop, so the work is bounded whatever
the text: a question longer than ``MAX_QUESTION_CHARACTERS`` is declined before it is read (an
arithmetic question is one short sentence), the text is scanned a fixed number of times, at most
one expression is tried, and every character scanned and every node of the expression evaluated
is a step counted against ``MAX_STEPS`` (``ArithmeticBudget``); past that the question is declined.
"""

import ast
import dataclasses
import operator
import re

#: Longer questions are declined unread: the expression alone may hold 200 characters, the words
#: around it ("please work out ... exactly") a few dozen.
MAX_QUESTION_CHARACTERS = 500
#: The most work one question may cost, in steps (a character scanned, a node evaluated). The
#: longest question allowed costs about 5,000; a few thousand steps are well under a millisecond.
MAX_STEPS = 6_000
_MAX_EXPRESSION_LENGTH = 200
_MAX_EXPONENT = 64
_MAX_MAGNITUDE = 1e18

# Word forms, applied in order ("multiplied by" before "by" could ever matter).
_WORD_OPERATORS = (
    (re.compile(r"\bmultiplied\s+by\b"), "*"),
    (re.compile(r"\bdivided\s+by\b"), "/"),
    (re.compile(r"\btimes\b"), "*"),
    (re.compile(r"\bplus\b"), "+"),
    (re.compile(r"\bminus\b"), "-"),
    (re.compile(r"(?<=\d)\s*[x×]\s*(?=\d)"), "*"),
    (re.compile(r"÷"), "/"),
)
_CANDIDATE = re.compile(r"[\d.\s+\-*/^()]+")
_DIGIT = re.compile(r"\d")
_OPERATOR_BETWEEN_OPERANDS = re.compile(r"\d\s*[-+*/^]\s*[\d(-]|\)\s*[-+*/^]")
# A question is arithmetic only when everything around the expression is one of these words,
# so "changes between 2020-2024" is not read as a subtraction.
_FILLER_WORDS_TEXT = """
what whats what's is are calculate compute evaluate work out how much please equals equal to the
of result value tell me can you answer solve quickly exactly
"""
_FILLER_WORDS = frozenset(_FILLER_WORDS_TEXT.split())
_BINARY = {
    ast.Add: (operator.add, "+"),
    ast.Sub: (operator.sub, "-"),
    ast.Mult: (operator.mul, "*"),
    ast.Div: (operator.truediv, "/"),
    ast.Pow: (operator.pow, "^"),
}
_SENTENCES = {
    ast.Add: "Adding {left} and {right} gives {value}.",
    ast.Sub: "Subtracting {right} from {left} leaves {value}.",
    ast.Mult: "Multiplying {left} by {right} gives {value}.",
    ast.Div: "Dividing {left} by {right} gives {value}.",
    ast.Pow: "Raising {left} to the power of {right} gives {value}.",
}


class _NotArithmeticError(ValueError):
    """The text is not an expression this module evaluates (or costs more work than it may)."""


class ArithmeticBudget:
    """The work spent on one question, in steps, and the most it may spend.

    A step is one character scanned or one node of the expression evaluated. ``spend`` past the
    limit declines the question, so no text costs more than ``limit`` steps.
    """

    def __init__(self, limit: int = MAX_STEPS) -> None:
        self.limit = limit
        self.steps = 0

    @property
    def exhausted(self) -> bool:
        """True when the question was declined for costing more than the limit."""
        return self.steps > self.limit

    def spend(self, steps: int) -> None:
        """Count ``steps`` more; decline the question once the total passes the limit."""
        self.steps += steps
        if self.steps > self.limit:
            raise _NotArithmeticError("work budget spent")


@dataclasses.dataclass(frozen=True)
class ArithmeticAnswer:
    """An evaluated expression and the sentence that explains it."""

    expression: str
    value: str | None
    explanation: str

    @property
    def text(self) -> str:
        """The full answer, e.g. ``2 + 2 = 4. Adding 2 and 2 gives 4.``."""
        if self.value is None:
            return f"{self.expression} has no value: {self.explanation}"
        return f"{self.expression} = {self.value}. {self.explanation}"


def answer_arithmetic(query: str, budget: ArithmeticBudget | None = None) -> ArithmeticAnswer | None:
    """Return the answer to the arithmetic in a question, or None when it asks something else.

    The work is counted in ``budget`` (a new one when none is given); a question too long, or
    costing more than the budget allows, is declined (None).
    """
    if len(query) > MAX_QUESTION_CHARACTERS:
        return None
    try:
        return _answer(query, budget or ArithmeticBudget())
    except _NotArithmeticError:
        return None


def _answer(query: str, budget: ArithmeticBudget) -> ArithmeticAnswer | None:
    text = query.lower()
    for pattern, symbol in _WORD_OPERATORS:
        budget.spend(len(text))
        text = pattern.sub(symbol, text)
    budget.spend(len(text))
    # Everything around the expression must be filler without a digit, and a run without a digit
    # has no value: so only a question with exactly one run holding digits can be arithmetic, and
    # that run is the one expression worth trying (trying every run was quadratic in the text).
    with_digits = [run for run in _CANDIDATE.findall(text) if _DIGIT.search(run)]
    if len(with_digits) != 1:
        return None
    candidate = with_digits[0]
    expression = candidate.strip().rstrip(".").strip()
    if not _OPERATOR_BETWEEN_OPERANDS.search(expression):
        return None
    budget.spend(len(text))
    if not _only_filler(text.replace(candidate, " ", 1)):
        return None
    return _evaluate(expression, budget)


def _only_filler(text: str) -> bool:
    return all(word in _FILLER_WORDS for word in re.findall(r"[a-z']+", text)) and not _DIGIT.search(text)


def _evaluate(expression: str, budget: ArithmeticBudget) -> ArithmeticAnswer:
    if len(expression) > _MAX_EXPRESSION_LENGTH:
        raise _NotArithmeticError(expression)
    # Parsing and rendering are linear in the expression's length.
    budget.spend(2 * len(expression))
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval").body
    except SyntaxError:
        raise _NotArithmeticError(expression) from None
    shown = _render(tree)
    try:
        value = _value(tree, budget)
    except ZeroDivisionError:
        return ArithmeticAnswer(shown, None, "division by zero is undefined.")
    return ArithmeticAnswer(shown, _format_number(value), _explain(tree, value))


def _value(node: ast.expr, budget: ArithmeticBudget) -> float | int:
    budget.spend(1)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _value(node.operand, budget)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left, budget), _value(node.right, budget)
        if isinstance(node.op, ast.Pow) and (abs(right) > _MAX_EXPONENT or abs(left) > _MAX_MAGNITUDE):
            raise _NotArithmeticError("exponent too large")
        result = _BINARY[type(node.op)][0](left, right)
        if isinstance(result, complex) or abs(result) > _MAX_MAGNITUDE:
            raise _NotArithmeticError("result out of range")
        return result
    raise _NotArithmeticError(ast.dump(node))


def _render(node: ast.expr) -> str:
    """Render the expression with spaced operators and ``^`` for powers (``2+2`` → ``2 + 2``)."""
    return ast.unparse(node).replace(" ** ", "^")


def _explain(tree: ast.expr, value: float | int) -> str:
    if (
        isinstance(tree, ast.BinOp)
        and type(tree.op) in _SENTENCES
        and isinstance(tree.left, ast.Constant)
        and isinstance(tree.right, ast.Constant)
    ):
        return _SENTENCES[type(tree.op)].format(
            left=_format_number(tree.left.value),
            right=_format_number(tree.right.value),
            value=_format_number(value),
        )
    return f"Working through it in the usual order of operations gives {_format_number(value)}."


def _format_number(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.10g}"
