"""Three `burncloud router` processes on one PostgreSQL (issue #22).

A client spreads 10,000 requests over them: a token's quota holds across the three (at
most one request past it per router), a channel disabled through one router stops
serving on all within a second, and `kill -9` of one router under load bills nothing
twice. The numbers are printed (run pytest with -s to see them).
"""

import http.client
import json
import os
import secrets
import signal
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import _call, _start, psql

ROUTERS = 3
PASSWORD = "Scale-out-admin-1"


def _assert_env(name, what):
    value = os.environ.get(name)
    assert value, f"{name} must be {what} (cargo xtask test sets it)"
    return value


@pytest.fixture()
def cluster(tmp_path):
    """A fresh database, the fake OpenAI upstream and three routers sharing the database."""
    server = _assert_env("BURNCLOUD_TEST_POSTGRES", "the URL of a PostgreSQL server the test may create databases on")
    bin_path = _assert_env("BURNCLOUD_BIN", "the built burncloud binary")
    fake_path = _assert_env("FAKE_OPENAI_BIN", "the built fake_openai example")
    db = f"burncloud_scale_{secrets.token_hex(4)}"
    psql(server, f'CREATE DATABASE "{db}"')
    url = urllib.parse.urlunsplit(urllib.parse.urlsplit(server)._replace(path="/" + db))
    procs = []
    try:
        fake, fake_addr = _start([fake_path])
        procs.append(fake)
        secret = secrets.token_hex(32)
        routers = []
        for i in range(ROUTERS):
            data = tmp_path / f"r{i}"
            data.mkdir()
            env = dict(os.environ, DATABASE_URL=url, JWT_SECRET=secret, BURNCLOUD_DATA_DIR=str(data),
                       HOST="127.0.0.1", PORT="0", BURNCLOUD_ADMIN_PASSWORD=PASSWORD, RUST_LOG="warn")
            proc, addr = _start([bin_path, "router"], env)
            procs.append(proc)
            routers.append((proc, f"http://{addr}"))
        status, login = _call(routers[0][1], "POST", "/api/auth/login", body={"username": "admin", "password": PASSWORD})
        assert status == 200, login
        admin = login["data"]["token"]
        base = routers[0][1]
        status, ch = _call(base, "POST", "/console/api/channel", admin, {
            "name": "fake-openai", "type": 1, "key": "sk-upstream-fake-0123456789",
            "base_url": f"http://{fake_addr}", "models": "gpt-4o-mini",
        })
        assert status == 200, ch
        status, body = _call(base, "PUT", "/console/api/prices/gpt-4o-mini", admin, {"input": 0.15, "output": 0.60})
        assert status == 200, body
        yield {"url": url, "admin": admin, "routers": routers, "channel": ch["data"]["id"]}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        psql(server, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _token(c, quota):
    status, tok = _call(c["routers"][0][1], "POST", "/console/api/tokens", c["admin"],
                        {"name": f"scale-{quota}", "quota_limit": quota})
    assert status == 200, tok
    return tok["data"]["id"], tok["data"]["key"]


BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}).encode()


class Client:
    """One keep-alive connection per router and thread; counts answers per router."""

    def __init__(self, routers, key):
        self.addrs = [urllib.parse.urlsplit(base).netloc for _, base in routers]
        self.key = key
        self.local = threading.local()
        self.lock = threading.Lock()
        self.ok = [0] * len(routers)
        self.ok_times = [[] for _ in routers]
        self.refused = [0] * len(routers)
        self.other = {}

    def send(self, i):
        conns = getattr(self.local, "conns", None)
        if conns is None:
            conns = self.local.conns = {}
        for attempt in range(2):
            conn = conns.get(i) or http.client.HTTPConnection(self.addrs[i], timeout=30)
            conns[i] = conn
            try:
                conn.request("POST", "/v1/chat/completions", BODY,
                             {"content-type": "application/json", "authorization": f"Bearer {self.key}"})
                resp = conn.getresponse()
                data = resp.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError):
                conn.close()
                conns.pop(i, None)
                if attempt == 1:
                    with self.lock:
                        self.other["connection failed"] = self.other.get("connection failed", 0) + 1
                    return None
        with self.lock:
            if resp.status == 200:
                self.ok[i] += 1
                self.ok_times[i].append(time.monotonic())
            elif resp.status in (402, 429) and b"quota" in data:
                self.refused[i] += 1
            else:
                key = f"{resp.status} {data[:120]!r}"
                self.other[key] = self.other.get(key, 0) + 1
        return resp.status

    def spread(self, n, threads=12, stop=None):
        def work(k):
            if stop is not None and stop.is_set():
                return
            self.send(k % len(self.addrs))
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, range(n)))


def _token_usage(url, token_id):
    row = psql(url, f"SELECT t.quota_limit_nano, t.used_quota_nano, COUNT(l.id), COUNT(DISTINCT l.request_id), "
                    f"COALESCE(SUM(l.cost_nano), 0), COALESCE(MAX(l.cost_nano), 0), "
                    f"COUNT(l.id) FILTER (WHERE l.status = 200) "
                    f"FROM tokens t LEFT JOIN logs l ON l.token_id = t.id WHERE t.id = {token_id} "
                    f"GROUP BY t.quota_limit_nano, t.used_quota_nano")
    limit, used, rows, distinct, cost, largest, ok = map(int, row.split("|"))
    return {"limit": limit, "used": used, "rows": rows, "distinct": distinct, "cost": cost, "largest": largest, "ok": ok}


def _stop_all(c):
    for proc, _ in c["routers"]:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc, _ in c["routers"]:
        if proc.returncode is None:
            assert proc.wait(timeout=30) in (0, -9), "".join(proc.output)


def test_a_quota_holds_across_three_routers(cluster):
    c = cluster
    # One request prices a request (the fake answers the same usage every time).
    _, probe_key = _token(c, -1)
    probe = Client(c["routers"], probe_key)
    assert probe.send(0) == 200
    time.sleep(0.5)
    cost = int(psql(c["url"], "SELECT MAX(cost_nano) FROM logs"))
    assert cost > 0
    # A quota worth 3,000 requests, spread 10,000 requests over the three routers.
    quota_nano = 3000 * cost
    token_id, key = _token(c, quota_nano / 1e9)
    time.sleep(1.0)  # every router has seen the new token (config revision poll)
    client = Client(c["routers"], key)
    started = time.monotonic()
    client.spread(10_000)
    took = time.monotonic() - started
    _stop_all(c)  # graceful: every router stores what it served
    u = _token_usage(c["url"], token_id)
    print(f"\n10,000 requests over {ROUTERS} routers in {took:.1f} s; cost per request {cost} nano$; "
          f"quota {u['limit']} nano$ ({u['limit'] // cost} requests)")
    for i in range(ROUTERS):
        print(f"  router {i}: {client.ok[i]} served ({client.ok[i] * cost} nano$), {client.refused[i]} refused for quota")
    print(f"  spent {u['used']} nano$ = {u['used'] / u['limit']:.4f} of the quota; {u['rows']} usage records; other answers: {client.other}")
    assert not client.other, client.other
    assert sum(client.ok) + sum(client.refused) == 10_000
    # Billed exactly once: one record per request (refusals are logged too), one served
    # record per served request, and the used total is their sum.
    assert u["rows"] == u["distinct"] == 10_000
    assert u["ok"] == sum(client.ok)
    assert u["used"] == u["cost"] == sum(client.ok) * cost
    # Never more than the quota plus one request per router...
    assert u["used"] <= u["limit"] + ROUTERS * u["largest"], u
    # ...and the quota was actually used (leases do not strand it).
    assert u["used"] >= u["limit"] - ROUTERS * u["largest"], u
    assert all(n > 0 for n in client.ok), client.ok


def test_a_channel_disabled_on_one_router_stops_on_all_within_a_second(cluster):
    c = cluster
    _, key = _token(c, -1)
    client = Client(c["routers"], key)
    time.sleep(1.0)
    for i in range(ROUTERS):
        assert client.send(i) == 200
    status, body = _call(c["routers"][0][1], "PUT", "/console/api/channel", c["admin"], {"id": c["channel"], "status": 2})
    assert status == 200, body
    disabled = time.monotonic()
    stopped = {}
    while len(stopped) < ROUTERS and time.monotonic() - disabled < 5:
        for i in range(ROUTERS):
            if i not in stopped and client.send(i) != 200:
                stopped[i] = time.monotonic() - disabled
        time.sleep(0.02)
    print("\nchannel disabled through router 0; stopped serving after: " +
          ", ".join(f"router {i} {stopped.get(i, float('nan')) * 1000:.0f} ms" for i in range(ROUTERS)))
    assert len(stopped) == ROUTERS, stopped
    assert max(stopped.values()) < 1.0, stopped


def test_kill_9_under_load_bills_nothing_twice(cluster):
    c = cluster
    token_id, key = _token(c, -1)
    time.sleep(1.0)
    client = Client(c["routers"], key)
    victim = c["routers"][2][0]

    def kill_soon():
        time.sleep(2.0)
        victim.send_signal(signal.SIGKILL)
        client.killed_at = time.monotonic()

    killer = threading.Thread(target=kill_soon)
    killer.start()
    client.spread(6_000)
    killer.join()
    _stop_all(c)
    u = _token_usage(c["url"], token_id)
    served_by_survivors = client.ok[0] + client.ok[1]
    lost = sum(client.ok) - u["ok"]
    last_second = sum(1 for t in client.ok_times[2] if client.killed_at - 1.0 <= t <= client.killed_at)
    print(f"\nkill -9 of router 2 under load: served {client.ok}, stored {u['ok']} served records, "
          f"lost {lost} (router 2 served {last_second} in its last second); connection failures: {client.other}")
    # Nothing twice: one record per request id, the used total is exactly their sum.
    assert u["rows"] == u["distinct"]
    assert u["used"] == u["cost"]
    # The survivors lost nothing; the killed router lost at most what it had not flushed.
    assert u["ok"] <= sum(client.ok)
    assert u["ok"] >= served_by_survivors
    assert 0 <= lost <= last_second, (lost, last_second)
