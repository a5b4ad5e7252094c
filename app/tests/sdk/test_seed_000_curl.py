"""Seed 000's getting-started curl flow, run verbatim against a fresh `burncloud router`.

Only two things are substituted: the gateway's address (a free port instead of 3000) and
the upstream (the local fake instead of api.openai.com, which is not reachable here).
"""

import json
import signal
import subprocess

from conftest import start_router

SEED_FLOW = r'''
set -e
curl -s -X POST http://localhost:3000/api/auth/register \
-H "Content-Type: application/json" \
-d '{"username": "admin", "password": "YourSecurePassword!", "email": "admin@example.com"}' > register.json
TOKEN=$(python3 -c 'import json; print(json.load(open("register.json"))["data"]["token"])')
curl -s -X POST http://localhost:3000/console/api/channel \
-H "Content-Type: application/json" \
-H "Authorization: Bearer $TOKEN" \
-d '{
"name": "my-openai-channel",
"type": 1,
"key": "sk-your-openai-key",
"base_url": "https://api.openai.com",
"models": "gpt-4o-mini",
"group": "default",
"weight": 1,
"priority": 0
}' > channel.json
curl -s -X POST http://localhost:3000/v1/chat/completions \
-H "Content-Type: application/json" \
-H "Authorization: Bearer $TOKEN" \
-d '{
"model": "gpt-4o-mini",
"messages": [{"role": "user", "content": "Hello!"}],
"max_tokens": 10
}' > chat.json
sleep 0.3
curl -s http://localhost:3000/api/billing/summary \
-H "Authorization: Bearer $TOKEN" > billing.json
'''


def test_seed_000_curl_flow_verbatim(gateway, tmp_path):
    router, base = start_router()
    try:
        script = SEED_FLOW.replace("http://localhost:3000", base).replace("https://api.openai.com", f"http://{gateway.fake_addr}")
        subprocess.run(["bash", "-c", script], cwd=tmp_path, check=True, timeout=60)
        register = json.loads((tmp_path / "register.json").read_text())
        assert register["success"] is True
        assert register["data"]["roles"] == ["admin"]
        assert register["data"]["username"] == "admin"
        channel = json.loads((tmp_path / "channel.json").read_text())
        assert channel["success"] is True and channel["data"]["key"] != "sk-your-openai-key"
        chat = json.loads((tmp_path / "chat.json").read_text())
        assert chat["choices"][0]["message"]["content"] == "Hello from fake"
        billing = json.loads((tmp_path / "billing.json").read_text())
        assert billing["success"] is True
        assert billing["data"]["period_start"] is None and billing["data"]["period_end"] is None
        assert billing["data"]["pre_migration_requests"] == 0
        assert billing["data"]["models"] == [
            {"model": "gpt-4o-mini", "requests": 1, "prompt_tokens": 12, "completion_tokens": 3, "cost_usd": 0.0000036}
        ], "no price set in the seed flow: billed from the shipped catalog ($0.15 / $0.60 per 1M)"
        assert billing["data"]["total_cost_usd"] == 0.0000036
    finally:
        router.send_signal(signal.SIGTERM)
        assert router.wait(timeout=15) == 0
