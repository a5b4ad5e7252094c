"""Conformance: the published coding agents, run non-interactively against a real
`burncloud router` — Claude Code (`claude -p`, Anthropic Messages) and Codex CLI
(`codex exec`, OpenAI Responses), pinned by `cargo xtask test` (xtask/src/setup.rs
NPM_CLIENTS) — onto an OpenAI-compatible, an Anthropic, a Gemini and a Bedrock channel (the fakes,
scripted to answer text, then a tool call on the trigger word, then the tool's result), so
each client completes a turn and a tool round trip, streaming (both clients always
stream). Each request must appear in the logs with its ingress, model and usage.

Why pytest: the clients are separate programs like the SDKs, and this harness already
starts the real binary and the fakes as processes."""

import json
import os
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import _call, _start, start_router

SECRET = "pineapple-42"
TRIGGER = "burncloud-tool-test"
MODELS = [
    ("gpt-4o-mini", "openai", "Hello from fake"),
    ("claude-sonnet-4-5", "anthropic", "Hello from claude"),
    ("gemini-2.5-flash", "gemini", "Hello from gemini"),
    # Bedrock streams with the Anthropic event sequence (the fake's "Hello from claude").
    ("claude-bedrock", "bedrock", "Hello from claude"),
]


def _bin(name):
    path = os.environ.get(name)
    assert path and os.path.exists(path), f"{name} must point at the installed client (cargo xtask test installs it)"
    return path


@pytest.fixture(scope="module")
def agents():
    work = tempfile.mkdtemp(prefix="burncloud-clients-")
    secret = os.path.join(work, "secret.txt")
    with open(secret, "w") as f:
        f.write(SECRET + "\n")
    # Each client's own tool, with the arguments the fakes call it with.
    calls = ["--call", "Read=" + json.dumps({"file_path": secret}),
             "--call", "exec_command=" + json.dumps({"cmd": "cat secret.txt"})]
    procs = []
    addrs = {}
    for name in ("FAKE_OPENAI_BIN", "FAKE_ANTHROPIC_BIN", "FAKE_GEMINI_BIN"):
        p, addr = _start([_bin(name), *calls])
        procs.append(p)
        addrs[name] = addr
    router, base = start_router()
    status, reg = _call(base, "POST", "/api/auth/register", body={"username": "admin", "password": "YourSecurePassword!", "email": "admin@example.com"})
    assert status == 200, reg
    admin = reg["data"]["token"]
    for ch in [
        {"name": "fake-openai", "type": 1, "key": "sk-upstream-fake-0123456789", "base_url": f"http://{addrs['FAKE_OPENAI_BIN']}", "models": "gpt-4o-mini"},
        {"name": "fake-anthropic", "type": 14, "key": "sk-ant-api03-fake-key-0123456789", "base_url": f"http://{addrs['FAKE_ANTHROPIC_BIN']}", "models": "claude-sonnet-4-5"},
        {"name": "fake-gemini", "type": 24, "key": "AIzaSyFake-gemini-key-0123456789", "base_url": f"http://{addrs['FAKE_GEMINI_BIN']}", "models": "gemini-2.5-flash"},
        # AWS Bedrock (SigV4-checked by the fake), Claude Code's body passed natively.
        {"name": "fake-bedrock", "type": 33, "key": "AKIDFAKEBEDROCK0001|fake/secret+key0123456789|us-east-1",
         "base_url": f"http://{addrs['FAKE_ANTHROPIC_BIN']}", "models": "claude-bedrock",
         "model_mapping": {"claude-bedrock": "anthropic.claude-sonnet-4-5-v1:0"}},
    ]:
        status, body = _call(base, "POST", "/console/api/channel", admin, ch)
        assert status == 200, body
    status, body = _call(base, "PUT", "/console/api/prices/gpt-4o-mini", admin, {"input": 0.15, "output": 0.60})
    assert status == 200, body
    yield {"base": base, "admin": admin, "work": work}
    router.send_signal(signal.SIGTERM)
    assert router.wait(timeout=15) == 0, router.stderr.read()
    for p in procs:
        p.kill()
        p.wait()


def claude(base, key, work, model, prompt, extra=(), env_extra=None):
    home = tempfile.mkdtemp(prefix="claude-home-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(HOME=home, ANTHROPIC_BASE_URL=base, ANTHROPIC_AUTH_TOKEN=key,
               CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_AUTOUPDATER="1")
    env.update(env_extra or {})
    return subprocess.run([_bin("CLAUDE_BIN"), "-p", prompt, "--model", model, *extra],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)


def codex_home(base):
    home = tempfile.mkdtemp(prefix="codex-home-")
    with open(os.path.join(home, "config.toml"), "w") as f:
        f.write(f'''model_provider = "burncloud"

[model_providers.burncloud]
name = "BurnCloud"
base_url = "{base}/v1"
env_key = "BURNCLOUD_API_KEY"
wire_api = "responses"
''')
    return home


def codex(base, key, work, model, prompt, extra=()):
    home = codex_home(base)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(HOME=home, CODEX_HOME=home, BURNCLOUD_API_KEY=key)
    # No sandbox: it needs helper binaries Codex will not create under /tmp; the command
    # the fake asks for is `cat` in a scratch directory.
    return subprocess.run([_bin("CODEX_BIN"), "exec", "--skip-git-repo-check", "-s", "danger-full-access", "-m", model, *extra, prompt],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def new_key(base, admin, name):
    """A fresh key, so each test finds exactly its own log records: (key, token id)."""
    status, tok = _call(base, "POST", "/console/api/tokens", admin, {"name": name})
    assert status == 200, tok
    return tok["data"]["key"], tok["data"]["id"]


def logs(base, admin, token_id, n):
    """The log records of a key, once there are at least `n` (waits for the usage writer)."""
    items = []
    for _ in range(100):
        status, body = _call(base, "GET", f"/console/api/logs?token_id={token_id}&page_size=100", admin)
        assert status == 200, body
        items = body["data"]["items"]
        if len(items) >= n:
            return items
        time.sleep(0.1)
    raise AssertionError(f"{len(items)} log records of token {token_id}, expected {n}: {items}")


@pytest.mark.parametrize("model,upstream,hello", MODELS)
def test_claude_code_turn_and_tool_round_trip(agents, model, upstream, hello):
    a = agents
    key, token_id = new_key(a["base"], a["admin"], f"claude-{model}")
    r = claude(a["base"], key, a["work"], model, "Say hello")
    assert r.returncode == 0, r.stdout + r.stderr
    assert hello in r.stdout
    r = claude(a["base"], key, a["work"], model, f"Read secret.txt ({TRIGGER})", ["--allowedTools", "Read"])
    assert r.returncode == 0, r.stdout + r.stderr
    # The fake answers the tool result by repeating it: Claude Code ran Read and sent it back.
    assert "The tool said" in r.stdout and SECRET in r.stdout, r.stdout
    # Text turn, tool call, final answer.
    recs = logs(a["base"], a["admin"], token_id, 3)
    assert len(recs) == 3, recs
    for rec in recs:
        assert rec["ingress"] == "anthropic" and rec["endpoint"] == "/v1/messages", rec
        assert rec["status"] == 200 and rec["model"] == model, rec
        assert rec["upstream"] == upstream
        assert rec["prompt_tokens"] > 0 and rec["completion_tokens"] > 0, rec
        assert rec["stream"] in (True, 1), rec
        if model == "gpt-4o-mini":
            assert rec["cost_nano"] > 0, rec


@pytest.mark.parametrize("model,upstream,hello", MODELS)
def test_codex_exec_turn_and_tool_round_trip(agents, model, upstream, hello):
    a = agents
    key, token_id = new_key(a["base"], a["admin"], f"codex-{model}")
    r = codex(a["base"], key, a["work"], model, "Say hello")
    assert r.returncode == 0, r.stdout + r.stderr
    assert hello in r.stdout, r.stdout + r.stderr
    r = codex(a["base"], key, a["work"], model, f"Show secret.txt ({TRIGGER})")
    assert r.returncode == 0, r.stdout + r.stderr
    # Codex ran `cat secret.txt` and sent the output back; the fake repeated it.
    assert "The tool said" in r.stdout and SECRET in r.stdout, r.stdout + r.stderr
    recs = logs(a["base"], a["admin"], token_id, 3)
    assert len(recs) == 3, recs
    for rec in recs:
        assert rec["ingress"] == "responses" and rec["endpoint"] == "/v1/responses", rec
        assert rec["status"] == 200 and rec["model"] == model, rec
        assert rec["upstream"] == upstream
        assert rec["prompt_tokens"] > 0 and rec["completion_tokens"] > 0, rec
        if model == "gpt-4o-mini":
            assert rec["cost_nano"] > 0, rec


def _cli(env, *args):
    return subprocess.run([_bin("BURNCLOUD_BIN"), *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def local_agents():
    """A real llama-server (the pinned build) serving the tiny GGUF with a context big
    enough for the agents' ~40-50 KB first requests (its tokenizer is byte-level)."""
    llama = _bin("BURNCLOUD_TEST_LLAMA_SERVER")
    tiny = _bin("TINY_GGUF_BIN")
    data_dir = tempfile.mkdtemp(prefix="burncloud-local-agents-")
    env = dict(os.environ, BURNCLOUD_DATA_DIR=data_dir, PORT="0", HOST="127.0.0.1",
               LLAMA_SERVER=llama, BURNCLOUD_LOCAL_FIRST_PORT="19480")
    model = os.path.join(data_dir, "tiny-agents.gguf")
    subprocess.run([tiny, model, "tiny agents"], check=True)
    imp = _cli(env, "model", "import", model)
    assert imp.returncode == 0, imp.stderr
    router, addr = _start([_bin("BURNCLOUD_BIN"), "router"], env)
    base = f"http://{addr}"
    status, reg = _call(base, "POST", "/api/auth/register", body={"username": "admin", "password": "YourSecurePassword!", "email": "admin@example.com"})
    assert status == 200, reg
    admin = reg["data"]["token"]
    # One slot with the whole context (llama-server caps a slot at the trained context,
    # 512 in the tiny model's header: overridden). The tiny model writes noise: a grammar
    # makes its answer a short sentence that ends (stop reason `stop`, as a real model's).
    run = _cli(env, "model", "run", "1", "--ctx", "65536", "--parallel", "1", "--arg=--jinja",
               "--arg=--override-kv", "--arg=llama.context_length=int:65536",
               "--arg=--grammar", '--arg=root ::= "Hello from the tiny model."')
    assert run.returncode == 0, run.stdout + run.stderr
    status, tok = _call(base, "POST", "/console/api/tokens", admin, {"name": "agents-local"})
    assert status == 200, tok
    work = tempfile.mkdtemp(prefix="burncloud-local-work-")
    yield {"base": base, "admin": admin, "key": tok["data"]["key"], "token_id": tok["data"]["id"], "work": work}
    stop = _cli(env, "model", "stop", "1")
    router.send_signal(signal.SIGTERM)
    assert router.wait(timeout=20) == 0
    assert stop.returncode == 0, stop.stderr


def test_claude_code_and_codex_on_a_local_model(local_agents):
    a = local_agents
    # The readable name of the library model "tiny agents".
    r = claude(a["base"], a["key"], a["work"], "local-tiny-agents", "Say hello")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Hello from the tiny model." in r.stdout
    r = codex(a["base"], a["key"], a["work"], "local-1", "Say hello")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Hello from the tiny model." in r.stdout
    recs = logs(a["base"], a["admin"], a["token_id"], 2)
    by_ingress = {rec["ingress"]: rec for rec in recs}
    assert set(by_ingress) == {"anthropic", "responses"}, recs
    for rec in recs:
        print(f"{rec['ingress']}: {rec['prompt_tokens']} prompt tokens, {rec['completion_tokens']} completion, {rec['latency_ms']} ms")
        assert rec["status"] == 200 and rec["locality"] == "local", rec
        # The agents' whole system prompts and tools reached the model.
        assert rec["prompt_tokens"] > 20000 and rec["completion_tokens"] > 0, rec
