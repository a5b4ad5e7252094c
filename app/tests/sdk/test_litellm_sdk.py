"""The LiteLLM SDK as a client of a real `burncloud router`: its OpenAI route
(`openai/<model>` with `api_base=<gateway>/v1`), its Anthropic route (`anthropic/<model>`
with `api_base=<gateway>`) and its Ollama route (`ollama_chat/<model>` with
`api_base=<gateway>`), streamed and not, onto channels of every type."""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import

import litellm  # noqa: E402
import pytest  # noqa: E402

# LiteLLM's own pydantic models warn on import; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

MODELS = [("gpt-4o-mini", "Hello from fake"), ("claude-sonnet-4-5", "Hello from claude"), ("gemini-2.5-flash", "Hello from gemini")]


def routes(gateway):
    return {
        "openai": {"api_base": gateway.base + "/v1"},
        "anthropic": {"api_base": gateway.base},
        "ollama_chat": {"api_base": gateway.base},
    }


@pytest.mark.parametrize("route", ["openai", "anthropic", "ollama_chat"])
@pytest.mark.parametrize("model,text", MODELS)
def test_litellm_completion_and_stream(gateway, sk_token, route, model, text):
    key = sk_token()
    kw = dict(routes(gateway)[route], api_key=key)
    if route == "ollama_chat":
        kw["extra_headers"] = {"Authorization": f"Bearer {key}"}
    r = litellm.completion(model=f"{route}/{model}", messages=[{"role": "user", "content": "Hello"}], max_tokens=50, **kw)
    assert r.choices[0].message.content == text
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    chunks = list(litellm.completion(model=f"{route}/{model}", messages=[{"role": "user", "content": "Hello"}],
                                     max_tokens=50, stream=True, **kw))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
