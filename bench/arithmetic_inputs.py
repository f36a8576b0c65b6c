"""CPU time of the simulated agent's answer to the worst queries: what one answer costs the event loop.

The simulated runner composes its answer (``orchestrator.runners.simulated_answers.compose_answer``,
which first looks for arithmetic) on the orchestrator's event loop, so the CPU one query costs is
time during which no gRPC call, stream or other task moves. This measures that CPU time
(``time.process_time``) for the inputs that were worst for the arithmetic parser, each in a child
process running the code of a checkout, so an older checkout can be measured beside this one:

    .venv/bin/python -m bench.arithmetic_inputs
    .venv/bin/python -m bench.arithmetic_inputs --trees . ../before

Each input is answered ``--repeat`` times (at least 3, at most 1 s of CPU per input and tree);
the table shows the fastest call, the one least disturbed by other work on the machine.
Bounded: about 2 s per tree for the slowest code measured so far; it starts nothing else.
"""

import argparse
import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
MAX_SECONDS_PER_INPUT = 1.0

#: The worst queries found for the parser (up to the longest query a task may have, 10,000
#: characters), and an ordinary question for scale.
INPUTS = {
    "What is 2+2?": "What is 2+2?",
    '"1+1a" × 2500': "1+1a" * 2500,
    '"1+1 a" × 2000': "1+1 a" * 2000,
    '"1+1a" × 125 (the longest question read)': "1+1a" * 125,
    '"1 x " × 2500': "1 x " * 2500,
    "5,000 nested parentheses": "What is " + "(" * 4990 + "1+1" + ")" * 4990,
    "10,000 digits + 1": "What is " + "9" * 9990 + "+1",
    "9**9**9": "What is 9**9**9?",
    "1+1+… (5,000 terms)": "What is " + "+".join(["1"] * 4995),
    "1+1+… (99 terms)": "What is " + "+".join(["1"] * 99),
    "1 + -(-(…1)) (190 signs)": "What is 1+" + "-" * 190 + "1",
}

# Runs in the child, with the checkout as its working directory (first on sys.path): reads the
# inputs as JSON on stdin, prints the fastest CPU seconds of each as JSON.
_MEASURE = """
import json, sys, time
from orchestrator.runners.simulated_answers import compose_answer
import orchestrator.runners.simulated_answers as module
settings = json.load(sys.stdin)
fastest = {}
for name, query in settings["inputs"].items():
    best, total, calls = float("inf"), 0.0, 0
    while calls < settings["repeat"] and (calls < 3 or total < settings["max_seconds"]):
        started = time.process_time()
        compose_answer(query)
        spent = time.process_time() - started
        best, total, calls = min(best, spent), total + spent, calls + 1
    fastest[name] = best
print(json.dumps({"module": module.__file__, "fastest": fastest}))
"""


def measure(tree: pathlib.Path, repeat: int) -> dict[str, float]:
    """Answer every input with the code of ``tree`` in a child; return each one's fastest CPU seconds."""
    settings = {"inputs": INPUTS, "repeat": repeat, "max_seconds": MAX_SECONDS_PER_INPUT}
    child = subprocess.run(
        [sys.executable, "-c", _MEASURE],
        cwd=tree,
        input=json.dumps(settings),
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(child.stdout)
    if not pathlib.Path(answer["module"]).resolve().is_relative_to(tree):
        raise RuntimeError(f"the child imported {answer['module']}, not the code of {tree}")
    return answer["fastest"]


def _tree_label(tree: pathlib.Path) -> str:
    commit = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return commit.stdout.strip() or tree.name


def main(argv: list[str] | None = None) -> int:
    """Measure every input on every checkout and print a Markdown table of CPU milliseconds per answer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trees", nargs="+", type=pathlib.Path, default=[REPO], help="checkouts whose code to measure"
    )
    parser.add_argument("--repeat", type=int, default=20, help="answers per input (3..1000)")
    args = parser.parse_args(argv)
    trees = [tree.resolve() for tree in args.trees]
    repeat = max(3, min(args.repeat, 1000))
    results = {tree: measure(tree, repeat) for tree in trees}

    print("| query | characters | " + " | ".join(f"{_tree_label(tree)} CPU ms" for tree in trees) + " |")
    print("|---|---|" + "---|" * len(trees))
    for name, query in INPUTS.items():
        cells = " | ".join(f"{results[tree][name] * 1000:.3f}" for tree in trees)
        print(f"| {name} | {len(query):,} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
