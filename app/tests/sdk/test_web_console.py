"""The web console in a real browser: Debian's Chromium, headless, driven by WebDriver
(chromedriver) through selenium, against a real `burncloud router` and the fake OpenAI
upstream. An admin signs in, adds a channel, creates a key (shown once), sees the request
made with it in Logs and on the dashboard's chart; a user invited by link registers on the
registration page and sees only their own keys and requests."""

import http.client
import json
import os
import signal
import tempfile
import time
import urllib.request

import pytest
from openai import OpenAI
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from conftest import _call, start_router

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")
ADMIN_PASSWORD = "YourSecurePassword!"


def browser():
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} missing: cargo xtask test installs Debian's chromium"
    assert os.path.exists(CHROMEDRIVER), f"{CHROMEDRIVER} missing: cargo xtask test installs chromium-driver"
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    # This machine's closed network: no background connections, a fresh profile.
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--window-size=1280,900", "--user-data-dir=" + tempfile.mkdtemp(prefix="bc-chromium-")]:
        o.add_argument(a)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)


def wait_for(what, check, timeout=20):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = check()
            if last:
                return last
        except Exception as e:  # the page is being re-rendered
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: last saw {last!r}")


def text(d, css):
    return d.find_element(By.CSS_SELECTOR, css).text


def nav(d, title):
    d.find_element(By.XPATH, f"//nav//button[.//span[text()='{title}']]").click()
    wait_for(f"the {title} page", lambda: d.find_element(By.CSS_SELECTOR, "h1.bc-title").text == title)


def field(d, form_css, label):
    return d.find_element(By.XPATH, f"//*[@id='{form_css}']//label[contains(normalize-space(.), '{label}')]//input")


def sign_in(d, base, username, password):
    d.get(base + "/")
    wait_for("the login page", lambda: d.find_element(By.ID, "username"))
    d.find_element(By.ID, "username").send_keys(username)
    d.find_element(By.ID, "password").send_keys(password)
    d.find_element(By.ID, "submit").click()


@pytest.fixture()
def router(gateway):
    """A fresh router (its own database) with an admin; the fake OpenAI upstream is shared."""
    proc, base = start_router()
    status, reg = _call(base, "POST", "/api/auth/register", body={"username": "admin", "password": ADMIN_PASSWORD})
    assert status == 200, reg
    yield base, reg["data"]["token"], gateway.fake_addr
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, "".join(proc.output[-20:])


def test_admin_and_invited_user_in_a_real_browser(router):
    base, admin_token, fake_addr = router
    d = browser()
    try:
        # A wrong password is refused on the page, in words.
        sign_in(d, base, "admin", "not-the-password-1")
        wait_for("the login error", lambda: "wrong username or password" in text(d, "#error"))
        sign_in(d, base, "admin", ADMIN_PASSWORD)
        wait_for("the admin console", lambda: d.title == "BurnCloud · Dashboard")
        assert "Signed in as admin" in text(d, "#account-name")
        # The session is an HttpOnly cookie: page scripts cannot read it.
        assert "burncloud_session" not in d.execute_script("return document.cookie")
        assert any(c["name"] == "burncloud_session" and c["httpOnly"] and c["sameSite"] == "Strict"
                   for c in d.get_cookies())

        # Add a channel to the fake OpenAI upstream.
        nav(d, "Channels")
        d.find_element(By.ID, "add-channel").click()
        wait_for("the channel form", lambda: d.find_element(By.ID, "channel-form"))
        field(d, "channel-form", "Name").send_keys("web-openai")
        field(d, "channel-form", "Key").send_keys("sk-upstream-fake-0123456789")
        field(d, "channel-form", "Base URL").send_keys(f"http://{fake_addr}")
        field(d, "channel-form", "Models").send_keys("gpt-4o-mini")
        d.find_element(By.XPATH, "//*[@id='channel-form']//button[text()='Save']").click()
        wait_for("the new channel in the table", lambda: "web-openai" in text(d, "#channels-table"))
        status, chans = _call(base, "GET", "/console/api/channel", admin_token)
        assert status == 200 and [c["name"] for c in chans["data"]] == ["web-openai"], chans

        # Create a key: shown once, with a copy button.
        nav(d, "Tokens")
        field(d, "token-form", "Name").send_keys("web-key")
        d.find_element(By.ID, "create-token").click()
        key = wait_for("the new key", lambda: text(d, "#notice code.bc-url").strip())
        assert key.startswith("sk-"), key
        wait_for("the key in the table", lambda: "web-key" in text(d, "#tokens-table"))

        # The key works through the gateway (the official OpenAI SDK).
        client = OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
        r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi from the web"}])
        assert r.choices[0].message.content

        # The request shows in Logs, and on the dashboard's chart.
        nav(d, "Logs")
        wait_for("the request in Logs", lambda: "gpt-4o-mini" in text(d, "#logs-table") and "web-openai" in text(d, "#logs-table"))
        assert text(d, "#log-count").startswith("1 requests")
        nav(d, "Dashboard")
        wait_for("the chart to move", lambda: "1 requests" in text(d, "#charts")
                 and d.find_elements(By.CSS_SELECTOR, "#charts rect.bc-chart-bar"))

        # Invite a user (invitation-only registration) and give them a code worth $5.
        status, body = _call(base, "PUT", "/console/api/settings/governance", admin_token, {"registration": "invite_only"})
        assert status == 200, body
        status, inv = _call(base, "POST", "/console/api/invitations", admin_token, {})
        assert status == 200, inv
        link = inv["data"]["link"]
        assert link.startswith(base + "/register?invite_code="), link
        status, codes = _call(base, "POST", "/console/api/redemptions", admin_token, {"name": "web", "amount_usd": 5})
        assert status == 200, codes
        code = codes["data"]["codes"][0]

        # Log out: back to the login page, and the old page's socket is gone.
        d.find_element(By.ID, "logout").click()
        wait_for("the login page after logging out", lambda: d.title == "Sign in · BurnCloud")
    finally:
        d.quit()

    u = browser()
    try:
        u.get(link)
        wait_for("the registration page", lambda: u.title == "Create your account · BurnCloud")
        assert u.find_element(By.ID, "invite_code").get_attribute("value") == inv["data"]["code"]
        u.find_element(By.ID, "username").send_keys("alice")
        u.find_element(By.ID, "password").send_keys("Alice-Passw0rd")
        u.find_element(By.ID, "submit").click()
        wait_for("alice's console", lambda: u.title == "BurnCloud · Overview")
        assert "Signed in as alice" in text(u, "#account-name")
        navs = [b.text for b in u.find_elements(By.CSS_SELECTOR, "nav .bc-nav-item .bc-nav-label")]
        assert navs == ["Overview", "Keys", "Logs", "Balance & invitations"], navs

        # Redeem the code on the page.
        nav(u, "Balance & invitations")
        u.find_element(By.ID, "redeem-code").send_keys(code)
        u.find_element(By.ID, "redeem").click()
        wait_for("the redemption", lambda: "$5.00 added to your balance" in text(u, "#notice"))

        # Her keys: not the admin's; a new one of her own.
        nav(u, "Keys")
        assert "web-key" not in u.find_element(By.TAG_NAME, "main").text
        assert not u.find_elements(By.XPATH, "//*[@id='token-form']//label[contains(., 'Group')]")
        field(u, "token-form", "Name").send_keys("alice-key")
        u.find_element(By.ID, "create-token").click()
        alice_key = wait_for("alice's key", lambda: text(u, "#notice code.bc-url").strip())
        assert alice_key.startswith("sk-") and alice_key != key
        rows = wait_for("her key in the table", lambda: text(u, "#tokens-table"))
        assert "alice-key" in rows and "web-key" not in rows

        client = OpenAI(base_url=base + "/v1", api_key=alice_key, max_retries=0)
        r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi from alice"}])
        assert r.choices[0].message.content

        # Her Logs: her one request, not the admin's, and no channel names.
        nav(u, "Logs")
        wait_for("alice's request in Logs", lambda: text(u, "#log-count").startswith("1 requests"))
        assert "web-openai" not in text(u, "#logs-table")
        nav(u, "Overview")
        wait_for("her balance to show the spend", lambda: text(u, "#balance-left").startswith("$4.99")
                 or text(u, "#balance-left").startswith("$5.00"))

        # She cannot use an admin action even by sending it: her console has none, and the
        # JSON API refuses her login token too.
        status, body = _call(base, "POST", "/console/api/session", body={"username": "alice", "password": "Alice-Passw0rd"})
        assert status == 200 and "token" not in body["data"], body
    finally:
        u.quit()


# Holds the messages the server sends the page, as a slow link would: window.__release(n)
# lets the n oldest through (returns how many are still held), window.__deliver() all of
# them and every later one.
HOLD_SERVER_MESSAGES = """
const ws = window.ipc.ws, deliver = ws.onmessage;
window.__held = [];
ws.onmessage = (m) => window.__held.push(m);
window.__release = (n) => { while (n-- > 0 && window.__held.length) deliver(window.__held.shift()); return window.__held.length; };
window.__deliver = () => { ws.onmessage = deliver; window.__release(Infinity); };
"""


def test_typing_is_kept_when_the_server_answers_late(router):
    """Every keystroke goes to the server, which answers with the field's value as of that
    keystroke. Answers to older keystrokes that arrive while the user is still typing must
    not erase what was typed since (the test above once lost ten characters of a redemption
    code that way on a busy machine, and redeemed an unknown code)."""
    base, _, _ = router
    d = browser()
    try:
        sign_in(d, base, "admin", ADMIN_PASSWORD)
        wait_for("the admin console", lambda: d.title == "BurnCloud · Dashboard")
        nav(d, "Tokens")
        name = field(d, "token-form", "Name")
        d.execute_script(HOLD_SERVER_MESSAGES)
        name.send_keys("late-")
        # The server answers these keystrokes; the answers wait in the page.
        wait_for("the server's answers", lambda: d.execute_script("return window.__held.length") > 0)
        time.sleep(0.5)
        name.send_keys("answers-")
        # The old answers arrive one by one; the user types on after the first that changes
        # the field (none should).
        while d.execute_script("return window.__release(1)") > 0:
            if name.get_attribute("value") != "late-answers-":
                break
        name.send_keys("kept")
        d.execute_script("window.__deliver()")
        time.sleep(1)
        assert name.get_attribute("value") == "late-answers-kept"
        # And the server has what the user typed.
        d.find_element(By.ID, "create-token").click()
        wait_for("the key in the table", lambda: "late-answers-kept" in text(d, "#tokens-table"))
    finally:
        d.quit()


def _upgrade(base, headers):
    """A WebSocket handshake for /console/ws; returns the status."""
    host = base.split("//")[1]
    conn = http.client.HTTPConnection(host, timeout=10)
    h = {"Host": host, "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    h.update(headers)
    conn.request("GET", "/console/ws", headers=h)
    status = conn.getresponse().status
    conn.close()
    return status


def test_console_socket_refuses_other_origins_and_no_session(router):
    base, _, _ = router
    host = base.split("//")[1]
    req = urllib.request.Request(base + "/console/api/session", method="POST",
                                 data=json.dumps({"username": "admin", "password": ADMIN_PASSWORD}).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        cookie = resp.headers["set-cookie"].split(";")[0]
    # Its own page: switching protocols.
    assert _upgrade(base, {"Origin": f"http://{host}", "Cookie": cookie}) == 101
    # Another page on this machine (another port is another origin, same site for cookies).
    assert _upgrade(base, {"Origin": "http://localhost:9", "Cookie": cookie}) == 403
    # A foreign site (the guard) and no Origin at all (not a browser page).
    assert _upgrade(base, {"Origin": "http://evil.example", "Cookie": cookie}) == 403
    assert _upgrade(base, {"Cookie": cookie}) == 403
    # No session, or a forged one.
    assert _upgrade(base, {"Origin": f"http://{host}"}) == 401
    assert _upgrade(base, {"Origin": f"http://{host}", "Cookie": "burncloud_session=forged.token.here"}) == 401
    # Logging in from a form post (what a hostile page can send without a preflight) fails.
    req = urllib.request.Request(base + "/console/api/session", method="POST",
                                 data=b"username=admin&password=x",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    try:
        urllib.request.urlopen(req)
        raise AssertionError("a form post logged in")
    except urllib.error.HTTPError as e:
        assert e.code == 415
