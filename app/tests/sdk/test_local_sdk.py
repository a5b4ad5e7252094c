"""The official openai and anthropic SDKs against a local model: a real `burncloud router`
supervising a real llama-server (the pinned build) that serves the tiny generated GGUF,
reached as `local-<id>` through the gateway. import → run → chat → usage logged → stop."""

import os
import signal
import subprocess
import tempfile

import anthropic
import openai
import pytest

from conftest import _call, _start


def _cli(env, *args):
    return subprocess.run([os.environ["BURNCLOUD_BIN"], *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def local():
    llama = os.environ.get("BURNCLOUD_TEST_LLAMA_SERVER")
    tiny = os.environ.get("TINY_GGUF_BIN")
    assert llama and os.path.exists(llama), "BURNCLOUD_TEST_LLAMA_SERVER must point at llama-server (cargo xtask test builds it)"
    assert tiny and os.path.exists(tiny), "TINY_GGUF_BIN must point at the tiny_gguf example"
    data_dir = tempfile.mkdtemp(prefix="burncloud-local-")
    env = dict(os.environ, BURNCLOUD_DATA_DIR=data_dir, PORT="0", HOST="127.0.0.1",
               LLAMA_SERVER=llama, BURNCLOUD_LOCAL_FIRST_PORT="19380")
    model = os.path.join(data_dir, "tiny-sdk.gguf")
    subprocess.run([tiny, model, "tiny sdk"], check=True)
    imp = _cli(env, "model", "import", model)
    assert imp.returncode == 0, imp.stderr
    router, addr = _start([os.environ["BURNCLOUD_BIN"], "router"], env)
    base = f"http://{addr}"
    status, reg = _call(base, "POST", "/api/auth/register", body={"username": "admin", "password": "YourSecurePassword!", "email": "admin@example.com"})
    assert status == 200, reg
    admin = reg["data"]["token"]
    # --jinja: llama-server renders tools and tool results with the model's template.
    run = _cli(env, "model", "run", "1", "--ctx", "512", "--arg=--jinja")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "running as local-1" in run.stdout
    status, tok = _call(base, "POST", "/console/api/tokens", admin, {"name": "sdk-local", "models": "local-1"})
    assert status == 200, tok
    yield {"base": base, "admin": admin, "key": tok["data"]["key"], "env": env}
    stop = _cli(env, "model", "stop", "1")
    router.send_signal(signal.SIGTERM)
    assert router.wait(timeout=20) == 0
    assert stop.returncode == 0, stop.stderr


def test_openai_sdk_chat_and_stream_on_a_local_model(local):
    client = openai.OpenAI(base_url=local["base"] + "/v1", api_key=local["key"])
    models = [m.id for m in client.models.list()]
    # The library model "tiny sdk" also answers to its readable name.
    assert models == ["local-1", "local-tiny-sdk"]
    one = client.models.retrieve("local-tiny-sdk")
    # The context llama-server serves it with (`--ctx 512`).
    assert one.id == "local-tiny-sdk" and one.model_extra["context_length"] == 512
    # The readable name routes to the model (its noise may end at once: count the prompt).
    r = client.chat.completions.create(model="local-tiny-sdk", messages=[{"role": "user", "content": "Hi"}], max_tokens=3)
    assert r.usage.prompt_tokens > 0
    r = client.chat.completions.create(model="local-1", messages=[{"role": "user", "content": "Hello"}], max_tokens=6)
    assert r.model
    assert r.usage.prompt_tokens > 0 and 0 < r.usage.completion_tokens <= 6
    assert r.choices[0].finish_reason in ("length", "stop")
    # The tiny model's vocabulary is <unk>, <s>, </s> and the 256 bytes, its weights noise:
    # a first token </s> ends the answer with usage counted and no text (seen twice in CI,
    # once with 32 tokens). `logit_bias` (passed through to llama-server) rules the three
    # out, so 32 byte tokens always come back as text.
    no_specials = {"0": -100, "1": -100, "2": -100}
    chunks = list(client.chat.completions.create(model="local-1", messages=[{"role": "user", "content": "Hello"}],
                                                 max_tokens=32, logit_bias=no_specials, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[-1].usage.completion_tokens == 32
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert any(c.choices and c.choices[0].delta.content for c in chunks)


def test_usage_of_local_requests_is_logged_at_price_zero(local):
    client = openai.OpenAI(base_url=local["base"] + "/v1", api_key=local["key"])
    client.chat.completions.create(model="local-1", messages=[{"role": "user", "content": "count me"}], max_tokens=3)
    import time
    for _ in range(50):
        status, logs = _call(local["base"], "GET", "/console/api/logs?model=local-1", local["admin"])
        assert status == 200, logs
        items = logs["data"]["items"] if isinstance(logs["data"], dict) else logs["data"]
        if items:
            break
        time.sleep(0.1)
    assert items, logs
    rec = items[0]
    assert rec["model"] == "local-1"
    assert rec["prompt_tokens"] > 0 and rec["completion_tokens"] > 0
    assert rec.get("locality") == "local"


def test_anthropic_sdk_messages_stream_and_tool_results_on_a_local_model(local):
    client = anthropic.Anthropic(base_url=local["base"], api_key=local["key"])
    # The shape Claude Code sends: system blocks with cache_control, then a user turn.
    msg = client.messages.create(
        model="local-1", max_tokens=6,
        system=[{"type": "text", "text": "You are a coding agent.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "Hello", "cache_control": {"type": "ephemeral"}}]}],
    )
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert msg.stop_reason in ("max_tokens", "end_turn")
    with client.messages.stream(model="local-1", max_tokens=32, messages=[{"role": "user", "content": "Hi"}]) as s:
        events = [e.type for e in s]
        final = s.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert final.usage.output_tokens > 0
    # The tiny model's weights are noise and Anthropic's API has no logit_bias: its first
    # token may be </s> (seen in CI: message_start, message_delta, message_stop), or come
    # after tokens that decode to no text (a special token, a lone UTF-8 byte: 2 tokens
    # and no text seen in CI). A stream without text must be an answer the model ended
    # itself, before the 32-token limit, with its tokens counted.
    if "content_block_delta" not in events:
        assert final.stop_reason == "end_turn", final
        assert 1 <= final.usage.output_tokens < 32, final
    # A tool round trip in the history, with tools offered: converted for llama-server.
    tools = [{"name": "get_weather", "description": "Weather for a city",
              "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    msg = client.messages.create(
        model="local-1", max_tokens=6, tools=tools,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C and sunny"}]},
        ],
    )
    assert msg.usage.input_tokens > 0
    assert msg.stop_reason in ("max_tokens", "end_turn", "tool_use")


def test_errors_from_a_local_model_keep_their_shapes(local):
    client = anthropic.Anthropic(base_url=local["base"], api_key=local["admin"])
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="local-99", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    oc = openai.OpenAI(base_url=local["base"] + "/v1", api_key=local["key"])
    with pytest.raises(openai.PermissionDeniedError):
        # The key is restricted to local-1.
        oc.chat.completions.create(model="local-2", messages=[{"role": "user", "content": "x"}])


def test_ollama_client_on_a_local_model(local):
    import ollama
    c = ollama.Client(host=local["base"], headers={"Authorization": f"Bearer {local['key']}"})
    assert "local-1" in [m.model for m in c.list().models]
    assert [m.model for m in c.ps().models] == ["local-1", "local-tiny-sdk"]
    r = c.chat(model="local-1", messages=[{"role": "user", "content": "Hello"}], options={"num_predict": 5}, stream=False)
    assert r.done and r.done_reason in ("stop", "length") and r.eval_count > 0 and r.prompt_eval_count > 0
    parts = list(c.chat(model="local-tiny-sdk", messages=[{"role": "user", "content": "Hello"}], options={"num_predict": 5}, stream=True))
    assert parts[-1].done and parts[-1].eval_count > 0
    g = c.generate(model="local-1", prompt="Hello", options={"num_predict": 4})
    assert g.done and g.eval_count > 0


@pytest.fixture(scope="module")
def embedder(local):
    """A second tiny model deployed in embeddings mode on the same router."""
    model = os.path.join(local["env"]["BURNCLOUD_DATA_DIR"], "tiny-embed.gguf")
    subprocess.run([os.environ["TINY_GGUF_BIN"], model, "tiny embed"], check=True)
    imp = _cli(local["env"], "model", "import", model)
    assert imp.returncode == 0, imp.stderr
    mid = imp.stdout.split("Imported model ")[1].split()[0]
    run = _cli(local["env"], "model", "run", mid, "--ctx", "512", "--mode", "embeddings")
    assert run.returncode == 0, run.stdout + run.stderr
    yield f"local-{mid}"
    _cli(local["env"], "model", "stop", mid)


def test_openai_sdk_embeddings_from_a_local_model(local, embedder):
    client = openai.OpenAI(base_url=local["base"] + "/v1", api_key=local["admin"])
    r = client.embeddings.create(model=embedder, input=["hello world", "bonjour le monde"])
    assert len(r.data) == 2
    assert [d.index for d in r.data] == [0, 1]
    # The tiny model's embedding width (n_embd).
    assert len(r.data[0].embedding) == 64
    assert r.data[0].embedding != r.data[1].embedding
    assert r.usage.prompt_tokens > 0
    # The SDK asked for base64 above (its default) and decoded it; plain floats work too.
    f = client.embeddings.create(model=embedder, input="hello", encoding_format="float")
    assert len(f.data[0].embedding) == 64 and all(isinstance(x, float) for x in f.data[0].embedding)


def test_a_local_model_answers_to_the_alias_its_owner_gives_it(local):
    import time
    client = openai.OpenAI(base_url=local["base"] + "/v1", api_key=local["admin"])
    # Names a tool may insist on sending (Ollama style here); reserved and odd names are refused.
    bad = _cli(local["env"], "model", "alias", "1", "local-7")
    assert bad.returncode == 1 and "reserved" in bad.stderr, bad.stderr
    bad = _cli(local["env"], "model", "alias", "1", "my model")
    assert bad.returncode == 1 and "cannot be in an alias" in bad.stderr, bad.stderr
    assert _cli(local["env"], "model", "alias", "1").returncode == 2  # NAME or --clear
    ok = _cli(local["env"], "model", "alias", "1", "qwen2.5:7b")
    assert ok.returncode == 0 and 'now also answers to "qwen2.5:7b"' in ok.stdout, ok.stderr
    # The library name is the file's ("tiny-sdk"); the alias is listed beside it.
    assert "tiny-sdk (qwen2.5:7b)" in _cli(local["env"], "model", "list").stdout
    for _ in range(50):  # the running router reloads its routing table within a second
        if "qwen2.5:7b" in [m.id for m in client.models.list()]:
            break
        time.sleep(0.1)
    assert "qwen2.5:7b" in [m.id for m in client.models.list()]
    r = client.chat.completions.create(model="qwen2.5:7b", messages=[{"role": "user", "content": "alias"}], max_tokens=3)
    assert r.usage.prompt_tokens > 0
    # The alias is the owner's: the key limited to local-1 reaches it too, as the same model.
    keyed = openai.OpenAI(base_url=local["base"] + "/v1", api_key=local["key"])
    assert keyed.chat.completions.create(model="qwen2.5:7b", messages=[{"role": "user", "content": "x"}], max_tokens=2).usage.prompt_tokens > 0
    assert _cli(local["env"], "model", "alias", "1", "--clear").returncode == 0
    for _ in range(50):
        if "qwen2.5:7b" not in [m.id for m in client.models.list()]:
            break
        time.sleep(0.1)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="qwen2.5:7b", messages=[{"role": "user", "content": "x"}], max_tokens=2)
