"""The container set-up of seed 000: docker-compose.yml and the Dockerfile (issue #22).

Docker is not needed: the files are read and checked against the contract's Environment
table, then the real `burncloud router` runs with exactly the compose file's environment
for the `burncloud` service, pointed at the temporary PostgreSQL server that `cargo xtask
test` starts (BURNCLOUD_TEST_POSTGRES).
"""

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import shlex
import signal
import urllib.parse
from pathlib import Path

import yaml

from conftest import _call, _start, psql

REPO = Path(__file__).resolve().parents[3]
# The shared docs sit beside the clone (`<clone>/../shared`), in CI too.
CONTRACT = REPO.parent / "shared" / "docs" / "api-contract.md"
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


# --- reading the files -----------------------------------------------------------------

class MissingVariable(Exception):
    pass


_INTERPOLATION = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value, env):
    """Compose's variable substitution: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, ${VAR?error}, $$."""

    def sub(m):
        if m.group("escaped"):
            return "$"
        if m.group("named"):
            return env.get(m.group("named"), "")
        expr = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])(.*))?", m.group("braced"), re.S)
        assert expr, f"not a compose variable: ${{{m.group('braced')}}}"
        name, op, arg = expr.groups()
        set_, nonempty = name in env, bool(env.get(name))
        if op is None:
            return env.get(name, "")
        if op == ":-":
            return env[name] if nonempty else arg
        if op == "-":
            return env[name] if set_ else arg
        if (op == ":?" and not nonempty) or (op == "?" and not set_):
            raise MissingVariable(f"{name}: {arg}")
        return env[name]

    return _INTERPOLATION.sub(sub, str(value))


def compose():
    assert COMPOSE.exists(), f"{COMPOSE} is missing (seed 000: the project ships a docker-compose.yml)"
    return yaml.safe_load(COMPOSE.read_text())


def service_env(service, env):
    """A service's `environment` (mapping or KEY=VALUE list), interpolated with `env`."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {key: interpolate("" if value is None else value, env) for key, value in raw.items()}


def contract_environment():
    """Every variable the contract's Environment table names (first column, in backticks)."""
    assert CONTRACT.exists(), f"the contract is missing: {CONTRACT} (the shared docs beside the clone)"
    text = CONTRACT.read_text()
    assert "\n## Environment" in text, f"{CONTRACT} has no Environment section"
    section = text.split("\n## Environment", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("|"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", line.strip("|").split("|")[0]))
    assert {"HOST", "PORT", "JWT_SECRET", "DATABASE_URL"} <= names, f"the Environment table did not parse: {sorted(names)}"
    return names


def dockerfile_stages():
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments), continuations joined."""
    assert DOCKERFILE.exists(), f"{DOCKERFILE} is missing (seed 000: the compose file builds it)"
    stages, line = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        # Comments (also inside a continued instruction, the parser directive included).
        if raw.strip().startswith("#") or not (line or raw.strip()):
            continue
        line += raw.rstrip()
        if line.endswith("\\"):
            line = line[:-1] + " "
            continue
        instruction, _, args = line.strip().partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append([])
        assert stages, f"Dockerfile: {instruction} before the first FROM"
        stages[-1].append((instruction, args.strip()))
        line = ""
    return stages


def image_env(stage):
    """The ENV of a stage (`ENV A=1 B=2`, or the old `ENV A 1`)."""
    env = {}
    for instruction, args in stage:
        if instruction != "ENV":
            continue
        words = shlex.split(args)
        if words and "=" not in words[0]:
            env[words[0]] = " ".join(words[1:])
        else:
            env.update(word.split("=", 1) for word in words)
    return env


# --- A: the files, against the contract and seed 000 ------------------------------------

def test_compose_burncloud_environment_is_the_contracts():
    services = compose()["services"]
    assert set(services) >= {"burncloud", "postgres"}, sorted(services)
    env = service_env(services["burncloud"], {"JWT_SECRET": "x" * 64})
    allowed = contract_environment()
    unknown = sorted(set(env) - allowed)
    assert not unknown, f"docker-compose.yml sets variables the contract's Environment table does not list: {unknown}"
    # Seed 000: "HOST=0.0.0.0 — required in containers", "PORT=8080 — mapped to host port 8080".
    assert env["HOST"] == "0.0.0.0"
    assert env["PORT"] == "8080"
    assert "8080:8080" in [str(p) for p in services["burncloud"]["ports"]]


def test_compose_database_url_is_the_postgres_service():
    services = compose()["services"]
    for overrides in ({}, {"POSTGRES_PASSWORD": "mysecurepass"}):  # seed 000's override
        env = dict(overrides, JWT_SECRET="x" * 64)
        burncloud = service_env(services["burncloud"], env)
        postgres = service_env(services["postgres"], env)
        urls = {k: burncloud[k] for k in ("BURNCLOUD_DATABASE_URL", "DATABASE_URL") if k in burncloud}
        assert urls, "the burncloud service sets no DATABASE_URL / BURNCLOUD_DATABASE_URL"
        for name, value in urls.items():
            url = urllib.parse.urlsplit(value)
            assert url.scheme in ("postgres", "postgresql"), f"{name}={value} is not a postgres:// URL"
            assert url.hostname == "postgres" and url.port == 5432, f"{name} must name the postgres service at 5432: {value}"
            assert urllib.parse.unquote(url.username or "") == postgres["POSTGRES_USER"], value
            assert urllib.parse.unquote(url.password or "") == postgres["POSTGRES_PASSWORD"], value
            assert url.path == "/" + postgres["POSTGRES_DB"], value
        if overrides:
            assert postgres["POSTGRES_PASSWORD"] == "mysecurepass"
    assert services["postgres"]["image"] == "postgres:16-alpine"
    depends = services["burncloud"]["depends_on"]
    assert isinstance(depends, dict) and depends["postgres"]["condition"] == "service_healthy", depends
    assert "pg_isready" in json.dumps(services["postgres"]["healthcheck"]["test"])
    volumes = services["postgres"]["volumes"]
    assert "pgdata:/var/lib/postgresql/data" in volumes, volumes
    assert "pgdata" in compose()["volumes"]


def test_compose_requires_jwt_secret_from_env_file():
    burncloud = compose()["services"]["burncloud"]
    for env in ({}, {"JWT_SECRET": ""}):
        try:
            service_env(burncloud, env)
        except MissingVariable as e:
            assert e.args[0].startswith("JWT_SECRET:"), e
        else:
            raise AssertionError(f"docker compose must refuse to start without JWT_SECRET (given {env})")
    secret = secrets.token_hex(32)
    assert service_env(burncloud, {"JWT_SECRET": secret})["JWT_SECRET"] == secret
    assert ".env" in burncloud["environment"]["JWT_SECRET"], "the error should say where JWT_SECRET goes"


def test_dockerfile_builds_headless_and_runs_unprivileged():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "a multi-stage build: the runtime image carries no toolchain"
    builds = [args for stage in stages for i, args in stage if i == "RUN" and "cargo build" in args]
    assert builds, "no RUN cargo build"
    for flag in ("--release", "-p burncloud", "--no-default-features", "--locked"):
        assert all(flag in args for args in builds), f"cargo build without {flag}: {builds}"
    final = stages[-1]
    users = [args for i, args in final if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"the runtime image runs as root: USER {users}"
    checks = [args for i, args in final if i == "HEALTHCHECK"]
    assert checks and "/health" in checks[-1], f"no HEALTHCHECK on /health: {checks}"
    env = image_env(final)
    port = service_env(compose()["services"]["burncloud"], {"JWT_SECRET": "x"})["PORT"]
    assert env.get("PORT") == port and env.get("HOST") == "0.0.0.0" and env.get("BURNCLOUD_DATA_DIR") == "/data", env
    assert port in " ".join(args for i, args in final if i == "EXPOSE").split()
    assert "${PORT}" in checks[-1] or port in checks[-1], checks[-1]
    assert ("ENTRYPOINT", '["burncloud"]') in final and ("CMD", '["router"]') in final
    assert DOCKERIGNORE.exists(), f"{DOCKERIGNORE} is missing: the build context would carry target/ and .env"
    ignored = [l.strip() for l in DOCKERIGNORE.read_text().splitlines() if l.strip() and not l.startswith("#")]
    for entry in ("target/", ".git/", ".env"):
        assert entry in ignored, f".dockerignore must list {entry}"


# --- B: the router with the compose environment on PostgreSQL ---------------------------

def _jwt_signed_with(token, secret):
    head_payload, _, signature = token.rpartition(".")
    mac = hmac.new(secret.encode(), head_payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode() == signature


def test_compose_environment_runs_on_postgresql(tmp_path):
    server = os.environ.get("BURNCLOUD_TEST_POSTGRES")
    assert server, "BURNCLOUD_TEST_POSTGRES must be the URL of a PostgreSQL server the test may create databases on (cargo xtask test starts one)"
    bin_path = os.environ.get("BURNCLOUD_BIN")
    assert bin_path and os.path.exists(bin_path), "BURNCLOUD_BIN must point at the built burncloud binary (cargo xtask test sets it)"
    server_url = urllib.parse.urlsplit(server)

    # A fresh database for this test on the test server.
    db = f"burncloud_compose_{secrets.token_hex(4)}"
    psql(server, f'CREATE DATABASE "{db}"')
    router = None
    try:
        # Exactly what the container gets: the image's ENV, then the compose environment
        # (with the test server's password as POSTGRES_PASSWORD, as `POSTGRES_PASSWORD=…
        # docker compose up` would), then only these substitutions:
        secret = secrets.token_hex(32)
        env = image_env(dockerfile_stages()[-1])
        env.update(service_env(compose()["services"]["burncloud"], {
            "JWT_SECRET": secret,  # the .env file's `openssl rand -hex 32`
            "POSTGRES_PASSWORD": urllib.parse.unquote(server_url.password or ""),
        }))
        key = "BURNCLOUD_DATABASE_URL" if "BURNCLOUD_DATABASE_URL" in env else "DATABASE_URL"
        url = urllib.parse.urlsplit(env[key])
        assert url.username == server_url.username, f"the test server's user {server_url.username!r} is not the compose file's {url.username!r}"
        # - the `postgres` service → the test server, on a database of its own;
        env[key] = urllib.parse.urlunsplit(url._replace(netloc=f"{url.username}:{url.password}@{server_url.hostname}:{server_url.port}", path="/" + db))
        # - HOST=0.0.0.0 → loopback: a test server must never listen on other interfaces;
        env["HOST"] = "127.0.0.1"
        # - PORT=8080 → 0: the router picks a free port and prints it (as conftest does);
        env["PORT"] = "0"
        # - the image's /data → a temporary folder.
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        env["BURNCLOUD_DATA_DIR"] = str(data_dir)

        router, addr = _start([bin_path, "router"], env)
        base = f"http://{addr}"
        status, health = _call(base, "GET", "/health")
        assert status == 200, health

        # Seed 000's first steps: register the first user (the admin), log in.
        user = {"username": "admin", "password": "YourSecurePassword!", "email": "admin@example.com"}
        status, reg = _call(base, "POST", "/api/auth/register", body=user)
        assert status == 200 and reg["data"]["roles"] == ["admin"], reg
        status, login = _call(base, "POST", "/api/auth/login", body={"username": "admin", "password": user["password"]})
        assert status == 200, login
        token = login["data"]["token"]
        assert _jwt_signed_with(token, secret), "the login token is not signed with the compose file's JWT_SECRET"
        status, billing = _call(base, "GET", "/api/billing/summary", token)
        assert status == 200 and billing["success"] is True, billing

        # The account is in PostgreSQL, and nothing went to a SQLite file.
        assert psql(urllib.parse.urlunsplit(server_url._replace(path="/" + db)),
                    "SELECT username || '|' || role FROM users ORDER BY username") == "admin|admin"
        assert not list(data_dir.glob("*.db")), f"a SQLite database appeared: {list(data_dir.iterdir())}"

        router.send_signal(signal.SIGTERM)
        assert router.wait(timeout=15) == 0, "".join(router.output)
    finally:
        if router is not None and router.poll() is None:
            router.kill()
            router.wait()
        psql(server, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
