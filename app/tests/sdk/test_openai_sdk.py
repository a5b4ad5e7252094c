"""The official `openai` Python SDK against a real `burncloud router`."""

import time

import openai
import pytest
from openai import OpenAI


def client(gateway, key):
    return OpenAI(base_url=gateway.base + "/v1", api_key=key, max_retries=0, timeout=20)


def test_chat_with_the_login_jwt_as_in_seed_000(gateway):
    resp = client(gateway, gateway.admin).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}], max_tokens=10
    )
    assert resp.choices[0].message.content == "Hello from fake"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens == 12 and resp.usage.completion_tokens == 3


def test_chat_with_an_sk_token(gateway, sk_token):
    resp = client(gateway, sk_token()).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert resp.object == "chat.completion"
    assert resp.model == "gpt-4o-mini"


def test_streaming_with_usage(gateway, sk_token):
    stream = client(gateway, sk_token()).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from fake"
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 12 and chunks[-1].usage.completion_tokens == 3


def test_streaming_without_usage_gets_no_usage_chunk(gateway, sk_token):
    stream = client(gateway, sk_token()).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    assert all(c.choices for c in chunks), "the usage-only chunk the gateway asked for is not passed on"
    assert all(getattr(c, "usage", None) is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from fake"


def test_embeddings(gateway, sk_token):
    resp = client(gateway, sk_token()).embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(resp.data) == 2
    assert len(resp.data[0].embedding) == 3
    assert resp.usage.prompt_tokens == 12


def test_models_list_follows_the_token(gateway, sk_token):
    ids = sorted(m.id for m in client(gateway, sk_token(models="gpt-4o-mini")).models.list())
    assert ids == ["gpt-4o-mini"]
    ids = sorted(m.id for m in client(gateway, sk_token()).models.list())
    assert ids == ["claude-sonnet-4-5", "fail-500", "gemini-2.5-flash", "gpt-4o-mini", "text-embedding-3-small"]


def test_errors_map_to_sdk_exceptions(gateway, sk_token):
    with pytest.raises(openai.AuthenticationError) as e:
        client(gateway, "sk-wrong").chat.completions.create(model="gpt-4o-mini", messages=[])
    assert e.value.status_code == 401 and e.value.code == "invalid_token"
    with pytest.raises(openai.AuthenticationError) as e:
        client(gateway, sk_token(expired_time=1_000_000)).chat.completions.create(model="gpt-4o-mini", messages=[])
    assert e.value.code == "token_expired"
    with pytest.raises(openai.NotFoundError) as e:
        client(gateway, sk_token()).chat.completions.create(model="no-such-model", messages=[])
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.PermissionDeniedError) as e:
        client(gateway, sk_token(models="text-embedding-3-small")).chat.completions.create(model="gpt-4o-mini", messages=[])
    assert e.value.code == "permission_denied"
    with pytest.raises(openai.APIStatusError) as e:
        client(gateway, sk_token(quota_limit=0)).chat.completions.create(model="gpt-4o-mini", messages=[])
    assert e.value.status_code == 402 and e.value.code == "insufficient_quota"
    limited = sk_token(rpm_limit=1)
    client(gateway, limited).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError) as e:
        client(gateway, limited).chat.completions.create(model="gpt-4o-mini", messages=[])
    assert e.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError) as e:
        client(gateway, sk_token()).chat.completions.create(model="fail-500", messages=[])
    assert e.value.status_code == 503 and e.value.code == "service_unavailable"
    with pytest.raises(openai.BadRequestError) as e:
        client(gateway, sk_token()).chat.completions.create(model="", messages=[])
    assert e.value.code == "invalid_request"


def test_billing_summary_reflects_sdk_usage(gateway):
    status, before = gateway.call("GET", "/api/billing/summary")
    assert status == 200
    client(gateway, gateway.admin).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    time.sleep(0.3)
    status, after = gateway.call("GET", "/api/billing/summary")
    row = {m["model"]: m for m in after["data"]["models"]}["gpt-4o-mini"]
    old = {m["model"]: m for m in before["data"]["models"]}.get("gpt-4o-mini", {"requests": 0, "prompt_tokens": 0})
    assert row["requests"] == old["requests"] + 1
    assert row["prompt_tokens"] == old["prompt_tokens"] + 12
    assert set(after["data"]) == {"period_start", "period_end", "pre_migration_requests", "models", "total_cost_usd"}
