"""LangChain's `ChatOpenAI` (langchain-openai) against a real `burncloud router`'s `/v1`,
onto channels of every type: invoke, stream, and a bound tool's call."""

import pytest
from langchain_openai import ChatOpenAI

MODELS = [("gpt-4o-mini", "Hello from fake"), ("claude-sonnet-4-5", "Hello from claude"), ("gemini-2.5-flash", "Hello from gemini")]


@pytest.mark.parametrize("model,text", MODELS)
def test_chat_openai_invoke_stream_and_tools(gateway, sk_token, model, text):
    llm = ChatOpenAI(model=model, base_url=gateway.base + "/v1", api_key=sk_token(), max_retries=0)
    r = llm.invoke("Hello")
    assert r.content == text
    assert r.usage_metadata["input_tokens"] > 0 and r.usage_metadata["output_tokens"] > 0
    assert "".join(c.content for c in llm.stream("Hello")) == text

    def get_weather(location: str) -> str:
        """Current weather in a city."""
        return "18C"

    call = llm.bind_tools([get_weather]).invoke("Weather in Paris?").tool_calls[0]
    assert call["name"] == "get_weather" and call["args"] == {"location": "Paris"}
