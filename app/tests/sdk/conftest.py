"""Start a real fake OpenAI upstream and a real `burncloud router`, configured over HTTP."""

import glob
import json
import os
import shutil
import signal
import subprocess
import threading
import tempfile
import urllib.parse
import urllib.request

import pytest


@pytest.fixture(scope="session", autouse=True)
def _scratch(tmp_path_factory):
    """Everything the tests and the programs they start write to a temporary directory
    (data dirs, the clients' homes, the browser's profile) goes under pytest's own base
    directory, which keeps the last three runs and removes older ones: runs do not pile
    up in /tmp."""
    scratch = str(tmp_path_factory.mktemp("scratch"))
    tempfile.tempdir = scratch
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = scratch
    yield scratch
    tempfile.tempdir = None
    if before is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = before


# Every process the tests started, stopped at the end of the session whatever happened to
# the fixture that started it (one failing after its start must not leave a router and
# its llama-server running).
_STARTED = []


def _drain(stream, sink):
    for line in stream:
        sink.append(line)


def _start(cmd, env=None):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    line = proc.stdout.readline()
    if "127.0.0.1" not in line:
        proc.kill()
        raise RuntimeError(f"{cmd[0]} did not start: {line!r} {proc.stderr.read()}")
    _STARTED.append(proc)
    # Keep reading what it prints: a full pipe would stall a chatty process mid-test.
    proc.output = [line]
    for stream in (proc.stdout, proc.stderr):
        threading.Thread(target=_drain, args=(stream, proc.output), daemon=True).start()
    addr = line.split("http://")[-1].split()[0] if "http://" in line else line.split()[-1]
    return proc, addr


def _psql():
    found = shutil.which("psql") or (sorted(glob.glob("/usr/lib/postgresql/*/bin/psql")) or [None])[-1]
    assert found, "psql is missing: install Debian's postgresql package (cargo xtask test does)"
    return found


def psql(url, sql):
    """Run one SQL statement with psql; its output, unaligned, without headers."""
    out = subprocess.run([_psql(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"psql {sql!r}: {out.stderr}"
    return out.stdout.strip()


def pytest_sessionfinish(session, exitstatus):
    for proc in _STARTED:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _call(base, method, path, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class Gateway:
    def __init__(self, base, admin, fake_addr):
        self.base = base
        self.admin = admin
        self.fake_addr = fake_addr

    def call(self, method, path, token=None, body=None):
        return _call(self.base, method, path, token or self.admin, body)


def postgres_database():
    """A fresh database on the test server (BURNCLOUD_TEST_POSTGRES): its URL."""
    server = os.environ.get("BURNCLOUD_TEST_POSTGRES")
    assert server, "BURNCLOUD_TEST_POSTGRES must be the URL of a PostgreSQL server the test may create databases on (cargo xtask test starts one)"
    db = f"burncloud_sdk_{os.urandom(4).hex()}"
    psql(server, f'CREATE DATABASE "{db}"')
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(server)._replace(path="/" + db))


def start_router():
    """A fresh `burncloud router` on a free port with its own data dir (and, with
    BURNCLOUD_TEST_BACKEND=postgres, its own PostgreSQL database); returns (process, base URL)."""
    data_dir = tempfile.mkdtemp(prefix="burncloud-sdk-")
    env = dict(os.environ, BURNCLOUD_DATA_DIR=data_dir, PORT="0", HOST="127.0.0.1")
    if os.environ.get("BURNCLOUD_TEST_BACKEND") == "postgres":
        env.update(DATABASE_URL=postgres_database(), JWT_SECRET=os.urandom(32).hex())
    router, addr = _start([os.environ["BURNCLOUD_BIN"], "router"], env)
    return router, f"http://{addr}"


@pytest.fixture(scope="session")
def gateway():
    bin_path = os.environ.get("BURNCLOUD_BIN")
    fake_path = os.environ.get("FAKE_OPENAI_BIN")
    assert bin_path and os.path.exists(bin_path), "BURNCLOUD_BIN must point at the built burncloud binary (cargo xtask test sets it)"
    assert fake_path and os.path.exists(fake_path), "FAKE_OPENAI_BIN must point at the built fake_openai example"
    anthropic_path = os.environ.get("FAKE_ANTHROPIC_BIN")
    assert anthropic_path and os.path.exists(anthropic_path), "FAKE_ANTHROPIC_BIN must point at the built fake_anthropic example"
    fake, fake_addr = _start([fake_path])
    fake_an, fake_an_addr = _start([anthropic_path])
    gemini_path = os.environ.get("FAKE_GEMINI_BIN")
    assert gemini_path and os.path.exists(gemini_path), "FAKE_GEMINI_BIN must point at the built fake_gemini example"
    fake_gem, fake_gem_addr = _start([gemini_path])
    router, base = start_router()
    status, reg = _call(base, "POST", "/api/auth/register", body={"username": "admin", "password": "YourSecurePassword!", "email": "admin@example.com"})
    assert status == 200, reg
    admin = reg["data"]["token"]
    status, ch = _call(base, "POST", "/console/api/channel", admin, {
        "name": "fake-openai", "type": 1, "key": "sk-upstream-fake-0123456789",
        "base_url": f"http://{fake_addr}", "models": "gpt-4o-mini,text-embedding-3-small,fail-500",
        "group": "default", "weight": 1, "priority": 0,
    })
    assert status == 200, ch
    # Claude models on an Anthropic channel (a fake speaking the Messages API).
    status, ch = _call(base, "POST", "/console/api/channel", admin, {
        "name": "fake-anthropic", "type": 14, "key": "sk-ant-api03-fake-key-0123456789",
        "base_url": f"http://{fake_an_addr}", "models": "claude-sonnet-4-5",
    })
    assert status == 200, ch
    status, ch = _call(base, "POST", "/console/api/channel", admin, {
        "name": "fake-gemini", "type": 24, "key": "AIzaSyFake-gemini-key-0123456789",
        "base_url": f"http://{fake_gem_addr}", "models": "gemini-2.5-flash",
    })
    assert status == 200, ch
    for model, inp, out in [("gpt-4o-mini", 0.15, 0.60), ("text-embedding-3-small", 0.02, 0.0)]:
        status, body = _call(base, "PUT", f"/console/api/prices/{model}", admin, {"input": inp, "output": out})
        assert status == 200, body
    yield Gateway(base, admin, fake_addr)
    router.send_signal(signal.SIGTERM)
    assert router.wait(timeout=15) == 0, router.stderr.read()
    for p in (fake, fake_an, fake_gem):
        p.kill()
        p.wait()


@pytest.fixture()
def sk_token(gateway):
    def make(**fields):
        body = {"name": "sdk"}
        body.update(fields)
        status, tok = gateway.call("POST", "/console/api/tokens", body=body)
        assert status == 200, tok
        return tok["data"]["key"]
    return make
