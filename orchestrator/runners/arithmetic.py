"""Finding and safely evaluating a simple arithmetic question such as "What is 2+2?"."""

import ast
import dataclasses
import operator
import re

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
    """The text is not an expression this module evaluates."""


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


def answer_arithmetic(query: str) -> ArithmeticAnswer | None:
    """Return the answer to the arithmetic in a question, or None when it asks something else."""
    text = query.lower()
    for pattern, symbol in _WORD_OPERATORS:
        text = pattern.sub(symbol, text)
    for candidate in sorted(_CANDIDATE.findall(text), key=len, reverse=True):
        expression = candidate.strip().rstrip(".").strip()
        if not re.search(r"\d\s*[-+*/^]\s*[\d(-]|\)\s*[-+*/^]", expression):
            continue
        if not _only_filler(text.replace(candidate, " ", 1)):
            continue
        try:
            return _evaluate(expression)
        except _NotArithmeticError:
            continue
    return None


def _only_filler(text: str) -> bool:
    return all(word in _FILLER_WORDS for word in re.findall(r"[a-z']+", text)) and not re.search(r"\d", text)


def _evaluate(expression: str) -> ArithmeticAnswer:
    if len(expression) > _MAX_EXPRESSION_LENGTH:
        raise _NotArithmeticError(expression)
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval").body
    except SyntaxError:
        raise _NotArithmeticError(expression) from None
    shown = _render(tree)
    try:
        value = _value(tree)
    except ZeroDivisionError:
        return ArithmeticAnswer(shown, None, "division by zero is undefined.")
    return ArithmeticAnswer(shown, _format_number(value), _explain(tree, value))


def _value(node: ast.expr) -> float | int:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _value(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
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
