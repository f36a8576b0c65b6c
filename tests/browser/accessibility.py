"""Accessibility checks run in the page with axe-core (bundled by axe-playwright-python, no network)."""

from axe_playwright_python.sync_playwright import Axe

BLOCKING_IMPACTS = {"serious", "critical"}
_AXE = Axe()
# The document's and the viewport's widths, and the first elements reaching past the right edge.
OVERFLOW_SCRIPT = """() => {
  const viewport = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll("body *")]
    .filter((element) => element.getBoundingClientRect().right > viewport + 1)
    .slice(0, 5)
    .map((element) => element.tagName.toLowerCase() + (element.className ? "." + element.className : ""));
  return {document: document.documentElement.scrollWidth, viewport, wide};
}"""


def serious_violations(page) -> list[dict]:
    """Run axe-core on the page as it is now; return its serious and critical violations."""
    results = _AXE.run(page)
    return [
        violation for violation in results.response["violations"] if violation["impact"] in BLOCKING_IMPACTS
    ]


def describe(violations: list[dict]) -> str:
    """Return one readable line per violation and the nodes it was found on."""
    lines = []
    for violation in violations:
        targets = ", ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
        lines.append(f"{violation['impact']} {violation['id']}: {violation['help']} (on {targets})")
    return "\n".join(lines)


def assert_accessible(page, where: str) -> None:
    """Fail when axe-core finds a serious or critical violation on the page (``where`` names the view)."""
    violations = serious_violations(page)
    assert not violations, f"accessibility violations on {where}:\n{describe(violations)}"


def assert_no_horizontal_overflow(page, where: str) -> None:
    """Fail when the document is wider than the viewport (something would scroll sideways)."""
    measured = page.evaluate(OVERFLOW_SCRIPT)
    assert measured["document"] <= measured["viewport"], f"{where} overflows horizontally: {measured}"
