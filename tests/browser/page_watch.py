"""What a page reports while a test drives it: console messages, uncaught errors, CSP violations.

The console runs under a strict Content-Security-Policy. A violation does not throw: the browser
blocks the resource or the style and fires ``securitypolicyviolation`` at the document, so an init
script (run in every document before the page's own scripts) forwards each one to Python through a
binding, which survives navigations. A test fails when any violation or uncaught error was seen.
"""

import dataclasses
import json

REPORT_BINDING = "__taskgateReportCspViolation"
CSP_LISTENER = f"""
document.addEventListener("securitypolicyviolation", (event) => {{
  window.{REPORT_BINDING}({{
    directive: event.effectiveDirective || event.violatedDirective,
    blocked: event.blockedURI,
    source: event.sourceFile,
    line: event.lineNumber,
    sample: event.sample,
  }});
}}, true);
"""


@dataclasses.dataclass
class PageWatch:
    """The console messages, page errors and CSP violations of one browser context."""

    console: list[str] = dataclasses.field(default_factory=list)
    page_errors: list[str] = dataclasses.field(default_factory=list)
    csp_violations: list[dict] = dataclasses.field(default_factory=list)

    def attach(self, context) -> None:
        """Listen on the context: its pages' console and errors, and CSP violations in every document."""
        context.expose_binding(
            REPORT_BINDING, lambda _source, violation: self.csp_violations.append(violation)
        )
        context.add_init_script(CSP_LISTENER)
        context.on("page", self._watch_page)

    def _watch_page(self, page) -> None:
        page.on("console", lambda message: self.console.append(f"[{message.type}] {message.text}"))
        page.on(
            "pageerror",
            lambda error: self.page_errors.append(f"{error.name}: {error.message}\n{error.stack}"),
        )

    def problems(self) -> list[str]:
        """Return a line per CSP violation and uncaught page error (empty when the page behaved)."""
        lines = [
            f"CSP violation: {json.dumps(violation, sort_keys=True)}" for violation in self.csp_violations
        ]
        lines += [f"uncaught page error: {error}" for error in self.page_errors]
        return lines

    def log_text(self) -> str:
        """Return the console log file's text: console messages, then page errors and CSP violations."""
        sections = [
            "# console messages",
            *self.console,
            "",
            "# page errors",
            *self.page_errors,
            "",
            "# CSP violations",
            *(json.dumps(violation, sort_keys=True) for violation in self.csp_violations),
        ]
        return "\n".join(sections) + "\n"
