"""End to end in a real browser: ada signs in to the inbox page through the dev issuer and approves.

`AUTH_MODE=jwt python -m local.run` (the dev issuer, APPROVALS on), Debian's chromium driven
headless by Playwright. Skipped, saying why, only where no chromium is installed (.ci/run
installs it with apt).
"""
import json
import re
import shutil
import threading
import time
import uuid
from urllib.parse import quote

import pytest
import requests

from tests.test_end_to_end import Stack

# As root in a container there is no sandbox to use, and /dev/shm may be tiny; the rest keeps
# Chromium from calling home, and a proxy that does not exist catches whatever would still try:
# no network traffic but to 127.0.0.1 (loopback is never proxied).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--proxy-server=http://127.0.0.1:9"]
WAIT_SECONDS = 25
UI_TIMEOUT_MS = 15000


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("No Chromium on this machine: the inbox browser test needs Debian's chromium "
                    "(apt-get install chromium; .ci/run installs it).")
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium with a fresh profile; each page is its own tab (its own sessionStorage)."""
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is pinned in requirements-dev.txt")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=executable, headless=True,
            args=CHROMIUM_FLAGS)
        context.set_default_timeout(UI_TIMEOUT_MS)
        yield context
        context.close()


@pytest.fixture(scope="module")
def jwt_stack():
    """`AUTH_MODE=jwt make run`: its own dev issuer, the demo users' tokens and the inbox URL in its banner."""
    stack = Stack({"AUTH_MODE": "jwt", "APPROVALS": "on", "JWT_ISSUER": None, "JWT_AUDIENCE": None,
                   "ACCESS_RULES": None, "INBOX_CLIENT_ID": None})
    try:
        stack.tokens = {user.lower(): token for user, token in re.findall(r"export (\w+)_TOKEN='([^']+)'", stack.banner)}
        stack.inbox_url = re.search(r"Approvals inbox: (\S+)", stack.banner).group(1)
        yield stack
    finally:
        stack.stop()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def pending_titled(stack, user, title):
    """The caller's pending approvals with this title."""
    response = requests.get(f"{stack.url}/approvals", headers=bearer(stack.tokens[user]), timeout=10)
    assert response.status_code == 200, response.text
    return [approval for approval in response.json()["approvals"] if approval["title"] == title]


def wait_for_approval(stack, title, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pending_titled(stack, "ada", title)
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no approval {title!r} appeared in ada's GET /approvals within {timeout} s")


def start_and_wait(stack, name, title, result):
    """POST /executions?wait (as a workflow's caller would), its answer kept in result."""
    body = {"stateMachine": "approval", "name": name, "input": {"title": title, "amount": 120, "order": 42}}
    response = requests.post(f"{stack.url}/executions?wait={WAIT_SECONDS}", json=body,
                             headers=bearer(stack.tokens["ada"]), timeout=WAIT_SECONDS + 10)
    result.update(status=response.status_code, body=response.json())


def sign_in(page, inbox_url, user):
    """The way a person does it: the page's Sign in button, then the dev issuer's button for the user."""
    page.goto(inbox_url)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("button", name=f"Sign in as {user}").click()
    page.get_by_text(f"Signed in as {user}.").wait_for()


def test_ada_approves_from_the_inbox_page_and_the_waiting_caller_gets_her_answer(jwt_stack, browser, tmp_path):
    from playwright.sync_api import expect

    name = f"refund-{uuid.uuid4().hex[:8]}"
    title = f"Refund 120 EUR for order 42 ({name})"
    result = {}
    waiter = threading.Thread(target=start_and_wait, args=(jwt_stack, name, title, result), daemon=True)
    waiter.start()
    approval = wait_for_approval(jwt_stack, title)

    # bob is not an approver: the approval is not in his list, and its id is unknown to him
    assert pending_titled(jwt_stack, "bob", title) == []
    as_bob = requests.get(f"{jwt_stack.url}/approvals/{approval['id']}", headers=bearer(jwt_stack.tokens["bob"]),
                          timeout=10)
    assert (as_bob.status_code, as_bob.json()["Code"]) == (404, "ApprovalNotFound")
    # ... nor on his page (login_hint: the dev issuer signs him in at once)
    bob_page = browser.new_page()
    bob_page.goto(jwt_stack.inbox_url + "?login_hint=bob")
    expect(bob_page.get_by_text("Signed in as bob.")).to_be_visible()
    expect(bob_page.get_by_text("Nothing waits for your answer.")).to_be_visible()
    expect(bob_page.get_by_role("heading", name=title)).to_have_count(0)
    bob_page.close()

    # ada signs in through the dev issuer's page; the code leaves the address bar
    page = browser.new_page()
    sign_in(page, jwt_stack.inbox_url, "ada")
    assert page.url == jwt_stack.inbox_url
    item = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=title))
    expect(item).to_have_count(1)
    expect(item.get_by_role("definition").first).to_have_text("approval")
    expect(item.locator("pre")).to_contain_text('"order": 42')
    page.screenshot(path=str(tmp_path / "inbox.png"), full_page=True)

    # She answers with the keyboard: a comment, Tab to Approve, Enter
    item.get_by_role("textbox", name="Comment").fill("Customer verified")
    page.keyboard.press("Tab")
    expect(item.get_by_role("button", name="Approve")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Approved")
    expect(item).to_have_count(0)
    expect(page.get_by_role("heading", name="Waiting for your answer")).to_be_focused()

    # The caller that started the execution with ?wait gets the workflow's end: ada's approval
    waiter.join(WAIT_SECONDS + 15)
    assert result["status"] == 200, result
    assert result["body"]["status"] == "SUCCEEDED"
    output = result["body"]["output"]
    output = json.loads(output) if isinstance(output, str) else output
    assert (output["decision"], output["answeredBy"], output["comment"]) == ("approved", "ada", "Customer verified")
    # The page kept its token in the tab, out of the address bar and out of localStorage
    assert page.evaluate("window.localStorage.length") == 0
    assert "code=" not in page.url
    answered = requests.get(f"{jwt_stack.url}/approvals/{approval['id']}", headers=bearer(jwt_stack.tokens["ada"]),
                            timeout=10).json()
    assert (answered["status"], answered["answeredBy"]) == ("APPROVED", "ada")


def start(stack, title):
    """A demo approval execution, not waited for; its ARN."""
    body = {"stateMachine": "approval", "input": {"title": title}}
    response = requests.post(f"{stack.url}/executions", json=body, headers=bearer(stack.tokens["ada"]), timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["executionArn"]


def test_rejecting_and_an_approval_answered_elsewhere_first(jwt_stack, browser):
    from playwright.sync_api import expect

    suffix = uuid.uuid4().hex[:8]
    titles = {"answered elsewhere": f"Deploy to prod ({suffix})", "rejected here": f"Delete the archive ({suffix})"}
    arns = {key: start(jwt_stack, title) for key, title in titles.items()}
    elsewhere = wait_for_approval(jwt_stack, titles["answered elsewhere"])
    wait_for_approval(jwt_stack, titles["rejected here"])
    page = browser.new_page()
    page.goto(jwt_stack.inbox_url + "?login_hint=ada")
    items = {key: page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=title))
             for key, title in titles.items()}
    expect(items["answered elsewhere"]).to_have_count(1)
    expect(items["rejected here"]).to_have_count(1)

    # Someone answers the first through the API while it is still on the page: the page's answer comes second
    first = requests.post(f"{jwt_stack.url}/approvals/{elsewhere['id']}/approve", json={},
                          headers=bearer(jwt_stack.tokens["ada"]), timeout=10)
    assert first.status_code == 200, first.text
    items["answered elsewhere"].get_by_role("button", name="Reject").click()
    expect(page.get_by_role("alert")).to_contain_text(f"“{titles['answered elsewhere']}” was not answered")
    expect(page.get_by_role("alert")).to_contain_text("the first answer stands")
    expect(items["answered elsewhere"]).to_have_count(0)

    # The second is rejected with the mouse, and its workflow gets the rejection
    items["rejected here"].get_by_role("button", name="Reject").click()
    expect(page.get_by_role("status")).to_have_text("Rejected")
    expect(items["rejected here"]).to_have_count(0)
    for key, decision in (("answered elsewhere", "approved"), ("rejected here", "rejected")):
        ended = requests.get(f"{jwt_stack.url}/executions/{quote(arns[key], safe='')}?wait=10",
                             headers=bearer(jwt_stack.tokens["ada"]), timeout=20).json()
        output = json.loads(ended["output"]) if isinstance(ended["output"], str) else ended["output"]
        assert (ended["status"], output["decision"]) == ("SUCCEEDED", decision)


def test_a_forged_or_failed_sign_in_answer_signs_nobody_in_and_leaves_the_address_bar(jwt_stack, browser):
    from playwright.sync_api import expect

    page = browser.new_page()
    exchanges = []
    page.on("request", lambda request: exchanges.append(request.url) if request.url.endswith("/token") else None)
    # A code this tab never asked for (a login CSRF): refused before any exchange
    page.goto(jwt_stack.inbox_url + "?code=stolen-code&state=forged")
    expect(page.get_by_role("alert")).to_have_text(
        "This sign-in answer does not belong to a sign-in started here; sign in again.")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    assert (page.url, exchanges) == (jwt_stack.inbox_url, [])
    # The issuer's error comes back as words, not as a session
    page.goto(jwt_stack.inbox_url + "?error=access_denied&error_description=Not+a+demo+user")
    expect(page.get_by_role("alert")).to_have_text("Sign-in failed: Not a demo user")
    assert page.url == jwt_stack.inbox_url
    assert page.evaluate("window.sessionStorage.length") == 0
