"""The official `ollama` Python client against a real `burncloud router`'s Ollama API
(`/api/*` on the gateway's port), onto an OpenAI-compatible, an Anthropic and a Gemini
channel: list, show, chat and generate (streamed and not), tools, embed, errors, the
keyless-from-this-machine setting, and the log records."""

import time

import ollama
import pytest

from conftest import _call

MODELS = [("gpt-4o-mini", "Hello from fake"), ("claude-sonnet-4-5", "Hello from claude"), ("gemini-2.5-flash", "Hello from gemini")]
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
           "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}


def client(gateway, key):
    return ollama.Client(host=gateway.base, headers={"Authorization": f"Bearer {key}"})


def test_version_tags_show_ps(gateway, sk_token):
    c = client(gateway, sk_token())
    names = [m.model for m in c.list().models]
    assert {"gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash"} <= set(names)
    shown = c.show("gpt-4o-mini:latest")
    assert "completion" in shown.capabilities
    assert c.ps().models == []  # no local model in this gateway
    restricted = client(gateway, sk_token(models="gemini-2.5-flash"))
    assert [m.model for m in restricted.list().models] == ["gemini-2.5-flash"]


@pytest.mark.parametrize("model,text", MODELS)
def test_chat_and_generate_on_every_channel_type(gateway, sk_token, model, text):
    c = client(gateway, sk_token())
    r = c.chat(model=model, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}], stream=False)
    assert r.message.role == "assistant" and r.message.content == text
    assert r.done and r.done_reason == "stop"
    assert r.prompt_eval_count > 0 and r.eval_count > 0
    parts = list(c.chat(model=model, messages=[{"role": "user", "content": "Hello"}], stream=True))
    assert "".join(p.message.content for p in parts) == text
    assert parts[-1].done and parts[-1].done_reason == "stop" and parts[-1].eval_count > 0
    assert not any(p.done for p in parts[:-1])
    g = c.generate(model=model, prompt="Hello", system="Be brief.", options={"temperature": 0.1, "num_predict": 50})
    assert g.response == text and g.done
    pieces = list(c.generate(model=model, prompt="Hello", stream=True))
    assert "".join(p.response for p in pieces) == text and pieces[-1].done
    loaded = c.generate(model=model, prompt="")
    assert loaded.done and loaded.done_reason == "load"


def test_chat_tool_round_trip(gateway, sk_token):
    c = client(gateway, sk_token())
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    r = c.chat(model="gpt-4o-mini", messages=msgs, tools=[WEATHER], stream=False)
    call = r.message.tool_calls[0]
    assert call.function.name == "get_weather" and call.function.arguments == {"location": "Paris"}
    msgs += [r.message, {"role": "tool", "content": "18C and sunny", "tool_name": "get_weather"}]
    r = c.chat(model="gpt-4o-mini", messages=msgs, tools=[WEATHER], stream=False)
    assert r.message.content == "The tool said: 18C and sunny"
    streamed = list(c.chat(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER], stream=True))
    calls = [tc for p in streamed for tc in (p.message.tool_calls or [])]
    assert calls and calls[0].function.name == "get_weather" and calls[0].function.arguments == {"location": "Paris"}


def test_embed(gateway, sk_token):
    r = client(gateway, sk_token()).embed(model="text-embedding-3-small", input=["a", "b"])
    assert len(r.embeddings) == 2 and len(r.embeddings[0]) == 3
    assert r.prompt_eval_count > 0


def test_errors_in_ollamas_shape(gateway, sk_token):
    with pytest.raises(ollama.ResponseError) as e:
        client(gateway, sk_token()).chat(model="no-such-model", messages=[{"role": "user", "content": "x"}], stream=False)
    assert e.value.status_code in (404, 503)
    with pytest.raises(ollama.ResponseError) as e:
        ollama.Client(host=gateway.base).list()
    assert e.value.status_code == 401 and "keyless" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        client(gateway, sk_token()).chat(model="gpt-4o-mini", messages=[{"role": "tool", "content": "x"}], stream=False)
    assert e.value.status_code == 400


def test_keyless_requests_from_this_machine_use_the_chosen_key(gateway, sk_token):
    status, tok = gateway.call("POST", "/console/api/tokens", body={"name": "keyless", "models": "gpt-4o-mini"})
    assert status == 200, tok
    status, body = gateway.call("GET", "/console/api/settings/ollama")
    assert status == 200 and body["data"]["keyless_token_id"] is None  # off by default
    status, body = gateway.call("PUT", "/console/api/settings/ollama", body={"keyless_token_id": tok["data"]["id"]})
    assert status == 200, body
    try:
        anon = ollama.Client(host=gateway.base)
        assert [m.model for m in anon.list().models] == ["gpt-4o-mini"]
        assert anon.chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], stream=False).message.content == "Hello from fake"
    finally:
        status, body = gateway.call("PUT", "/console/api/settings/ollama", body={"keyless_token_id": None})
        assert status == 200, body
    with pytest.raises(ollama.ResponseError) as e:
        ollama.Client(host=gateway.base).list()
    assert e.value.status_code == 401


def test_ollama_requests_are_logged_with_their_ingress(gateway):
    status, tok = gateway.call("POST", "/console/api/tokens", body={"name": "ollama-logs"})
    assert status == 200, tok
    client(gateway, tok["data"]["key"]).chat(model="gemini-2.5-flash", messages=[{"role": "user", "content": "log me"}], stream=False)
    recs = []
    for _ in range(50):
        status, logs = _call(gateway.base, "GET", f"/console/api/logs?token_id={tok['data']['id']}", gateway.admin)
        assert status == 200, logs
        recs = logs["data"]["items"]
        if recs:
            break
        time.sleep(0.1)
    assert len(recs) == 1, logs
    rec = recs[0]
    assert rec["ingress"] == "ollama" and rec["endpoint"] == "/api/chat" and rec["upstream"] == "gemini"
    assert rec["model"] == "gemini-2.5-flash" and rec["status"] == 200
    assert rec["prompt_tokens"] > 0 and rec["completion_tokens"] > 0
