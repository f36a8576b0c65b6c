"""The browser harness itself: it sees CSP violations and page errors, and axe finds real problems.

These pages are served by Playwright's request routing (no stack needed), each with the console's
kind of policy, so the checks the console's tests rely on are shown to fire.
"""

from tests.browser.accessibility import assert_no_horizontal_overflow
from tests.browser.accessibility import serious_violations
from tests.browser.page_watch import PageWatch

ORIGIN = "http://harness.test"
STRICT_POLICY = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'"


def serve(context, html: str, policy: str = STRICT_POLICY) -> None:
    """Answer every request of the context with this HTML under this Content-Security-Policy."""
    context.route(
        ORIGIN + "/**",
        lambda route: route.fulfill(
            status=200,
            headers={"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": policy},
            body=html,
        ),
    )


def wait_for_reports(page, condition, timeout_s: float = 30.0) -> None:
    """Let the page run until condition() holds: reports reach Python between Playwright calls."""
    for _ in range(int(timeout_s * 10)):
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError("the page reported nothing")


def test_inline_script_and_style_are_reported_as_csp_violations(browser):
    watch = PageWatch()
    context = browser.new_context()
    watch.attach(context)
    serve(context, '<!doctype html><title>t</title><p style="color:red">x</p><script>window.ran = 1</script>')
    page = context.new_page()
    page.goto(ORIGIN + "/")
    wait_for_reports(page, lambda: len(watch.csp_violations) >= 2)
    context.close()
    directives = sorted(violation["directive"] for violation in watch.csp_violations)
    assert directives == ["script-src-elem", "style-src-attr"], watch.csp_violations
    assert len(watch.problems()) == 2


def test_uncaught_errors_are_reported(browser):
    watch = PageWatch()
    context = browser.new_context()
    watch.attach(context)
    serve(context, "<!doctype html><title>t</title>", policy="default-src 'self' 'unsafe-inline'")
    page = context.new_page()
    page.goto(ORIGIN + "/")
    page.evaluate("() => setTimeout(() => { throw new Error('boom'); }, 0)")
    wait_for_reports(page, lambda: watch.page_errors)
    context.close()
    assert any("boom" in error for error in watch.page_errors), watch.page_errors
    assert watch.problems()


def test_axe_runs_offline_under_the_strict_policy_and_finds_serious_problems(browser):
    context = browser.new_context()
    serve(context, '<!doctype html><html><title>t</title><button></button><img src="/x.png"></html>')
    page = context.new_page()
    page.goto(ORIGIN + "/")
    found = {violation["id"] for violation in serious_violations(page)}
    context.close()
    assert {"button-name", "image-alt"} <= found, found


def test_horizontal_overflow_is_detected(browser):
    context = browser.new_context(viewport={"width": 375, "height": 700})
    serve(
        context,
        '<!doctype html><html lang="en"><title>t</title><pre>' + "x" * 400 + "</pre></html>",
    )
    page = context.new_page()
    page.goto(ORIGIN + "/")
    try:
        assert_no_horizontal_overflow(page, "a page with a long line")
    except AssertionError as ex:
        assert "overflows horizontally" in str(ex)
    else:
        raise AssertionError("the overflow was not detected")
    finally:
        context.close()
