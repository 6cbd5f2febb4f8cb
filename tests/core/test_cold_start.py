"""What a cold environment imports and builds (docs/benchmarks.md, "Cold start"): no SDK in
any function (DynamoDB, EventBridge, SSM and Secrets Manager through collab.aws_json; of
botocore only its exceptions module), awscrt only once the first AWS call needs it,
redis.asyncio's body only if asked for, S3's botocore client only once a payload needs it,
botocore's data read by a leaner loader then; and that all of them still reach DynamoDB,
S3 (moto), Redis and the Management API that way. The import checks run in fresh
interpreters with the variables Lambda sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import botocore.loaders
import pytest
from botocore.exceptions import DataNotFoundError

from collab import aws_clients

ROOT = Path(__file__).resolve().parents[2]
LAMBDA = {"LAMBDA_TASK_ROOT": "/var/task", "AWS_LAMBDA_FUNCTION_NAME": "collab-test"}


def run_fresh(code: str, extra: dict[str, str]) -> dict[str, object]:
    """Run `code` in a new interpreter (as a new environment would); it prints JSON."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "functions"), **extra}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


LOADED = (
    "import json, sys; "
    "print(json.dumps({m: m in sys.modules and sys.modules[m] is not None "
    "for m in ('boto3', 's3transfer', 'botocore.session', 'botocore.client', 'urllib3', '_awscrt', "
    "'awscrt', 'jwt', 'redis', 'redis.asyncio.client', 'cryptography')}))"
)


def no_sdk(loaded: dict[str, object]) -> bool:
    return not any(
        loaded[m] for m in ("boto3", "s3transfer", "botocore.session", "botocore.client", "urllib3")
    )


@pytest.mark.parametrize("entry", ["connect", "authorizer"])
def test_connect_and_the_authorizer_reach_dynamodb_without_an_sdk(
    entry: str, aws_tables: dict[str, str]
) -> None:
    """The real read they make first (the caller's role), signed and sent by awscrt."""
    from collab.access import SceneAccess

    SceneAccess(aws_tables["ACCESS_TABLE"]).grant("scene-cold", "user-ada", "editor")
    code = (
        f"import entry.{entry} as e; "
        "access = e._dependencies()[1]; "
        "assert access.get_role('scene-cold', 'user-ada') == 'editor', 'role'; " + LOADED
    )
    extra = {**LAMBDA, **aws_tables, "AUTH_MODE": "hs256", "JWT_SECRET": "s" * 40}
    loaded = run_fresh(code, extra)
    assert no_sdk(loaded), loaded
    assert loaded["_awscrt"] is True, loaded
    assert loaded["redis"] is False, loaded
    assert loaded["cryptography"] is False, loaded  # hs256 (entry.without_cryptography)


@pytest.mark.parametrize("entry", ["messages", "disconnect", "connect", "authorizer", "http_api"])
def test_no_entry_point_imports_an_sdk_or_awscrt_before_its_first_call(entry: str) -> None:
    code = f"import entry.{entry}; " + LOADED
    loaded = run_fresh(code, {**LAMBDA, "AUTH_MODE": "hs256", "JWT_SECRET": "s" * 40})
    assert no_sdk(loaded), loaded
    assert loaded["_awscrt"] is False, loaded


AUTHORIZE = """
import json, sys
import entry.authorizer
class Context:
    function_name = "collab-test"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:collab-test"
    aws_request_id = "first"
def decide(token):
    event = {"methodArn": "arn:aws:execute-api:us-east-1:123456789012:api/local/$connect",
        "queryStringParameters": {"sceneId": "scene-cold", "token": token}}
    try:
        return entry.authorizer.lambda_handler(event, Context())["context"]["role"]
    except Exception as refused:
        return str(refused)
print(json.dumps([decide(t) for t in sys.argv[1:]]))
"""


def test_an_hs256_authorizer_verifies_without_cryptography(aws_tables: dict[str, str]) -> None:
    """PyJWT without the cryptography package (entry.without_cryptography): HS256 tokens
    are verified, forged and RS256-headed ones refused, and the package was never loaded."""
    import jwt

    from collab.access import SceneAccess

    SceneAccess(aws_tables["ACCESS_TABLE"]).grant("scene-cold", "user-ada", "editor")
    secret = "s" * 40
    claims = {"sub": "user-ada", "iat": int(time.time()), "exp": int(time.time()) + 600}
    good = jwt.encode(claims, secret, algorithm="HS256")
    forged = jwt.encode(claims, "f" * 40, algorithm="HS256")
    rs256 = good.replace(
        good.split(".")[0], jwt.utils.base64url_encode(b'{"alg":"RS256","typ":"JWT"}').decode()
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "functions"), **LAMBDA, **aws_tables}
    env.update(AUTH_MODE="hs256", JWT_SECRET=secret)
    done = subprocess.run(
        [sys.executable, "-c", AUTHORIZE + LOADED.replace("; ", "\n"), good, forged, rs256],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    decisions, loaded = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    assert decisions == ["editor", "Unauthorized", "Unauthorized"], decisions
    assert loaded["jwt"] is True and loaded["cryptography"] is False, loaded


def test_a_jwks_authorizer_keeps_cryptography() -> None:
    code = "import entry.authorizer, jwt.algorithms; assert jwt.algorithms.has_crypto; " + LOADED
    extra = {**LAMBDA, "AUTH_MODE": "jwks", "JWKS_URL": "https://keys.invalid/jwks.json", "ACCESS_TABLE": "t"}
    assert run_fresh(code, extra)["cryptography"] is True


@pytest.mark.parametrize("entry", ["messages", "disconnect"])
def test_the_per_message_runtime_builds_without_an_sdk_awscrt_or_an_s3_client(
    entry: str, aws_tables: dict[str, str]
) -> None:
    code = (
        f"import entry.{entry}; from collab import runtime, aws_clients; rt = runtime.current(); "
        "import gc; lazy = [o for o in gc.get_objects() if isinstance(o, aws_clients.LazyClient)]; "
        "assert lazy and not any(c.built for c in lazy), 's3 built'; " + LOADED
    )
    loaded = run_fresh(code, {**LAMBDA, **aws_tables, "REDIS_URL": "redis://127.0.0.1:1"})
    assert no_sdk(loaded), loaded
    assert loaded["_awscrt"] is False, loaded  # the first call loads it
    assert loaded["redis"] is True and loaded["redis.asyncio.client"] is False, loaded


class ManagementApi(ThreadingHTTPServer):
    """Answers 200 to every post and records its path and Authorization header."""

    daemon_threads = True

    def __init__(self) -> None:
        self.posts: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.posts.append((self.path, self.headers.get("Authorization", "")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def management_api() -> Iterator[ManagementApi]:
    server = ManagementApi()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


FIRST_SYNC = """
import json, sys
import entry.messages
from collab import management_client
assert "_awscrt" not in sys.modules
class Context:
    function_name = "collab-test"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:collab-test"
    aws_request_id = "first"
event = {"requestContext": {"connectionId": "first=", "routeKey": "sync", "requestId": "r1",
    "domainName": "local", "stage": "local", "connectedAt": 1,
    "authorizer": {"sceneId": "scene-cold", "userId": "user-ada", "userName": "Ada",
        "role": "editor", "exp": 4000000000}},
    "body": json.dumps({"action": "sync", "data": "AAABAA=="})}
assert entry.messages.lambda_handler(event, Context()) == {"statusCode": 200}
"""


def test_a_new_environment_answers_its_first_sync_without_an_sdk(
    aws_tables: dict[str, str], redis_standalone: str, management_api: ManagementApi
) -> None:
    """The whole first invocation as Lambda runs it: runtime built on demand, DynamoDB and
    Redis read, every reply posted and signed by awscrt, botocore's client never built."""
    from collab.access import SceneAccess

    SceneAccess(aws_tables["ACCESS_TABLE"]).grant("scene-cold", "user-ada", "editor")
    extra = {
        **LAMBDA,
        **aws_tables,
        "REDIS_URL": redis_standalone,
        "MANAGEMENT_ENDPOINT": f"http://127.0.0.1:{management_api.server_address[1]}/local",
    }
    loaded = run_fresh(FIRST_SYNC + LOADED, extra)
    assert loaded["_awscrt"] is True and no_sdk(loaded), loaded
    paths = [path for path, _ in management_api.posts]
    assert paths == ["/local/@connections/first%3D"] * 3, paths  # connected, SyncStep2, SyncStep1
    assert all(auth.startswith("AWS4-HMAC-SHA256 Credential=") for _, auth in management_api.posts)


LONE_DISCONNECT = """
import json, sys
import entry.disconnect
class Context:
    function_name = "collab-test"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:collab-test"
    aws_request_id = "last"
event = {"requestContext": {"connectionId": "lone=", "routeKey": "$disconnect", "requestId": "r2",
    "domainName": "local", "stage": "local", "connectedAt": 1,
    "authorizer": {"sceneId": "scene-lone", "userId": "user-ada", "userName": "Ada",
        "role": "editor", "exp": 4000000000}}}
assert entry.disconnect.lambda_handler(event, Context()) == {"statusCode": 200}
"""


def test_a_disconnect_with_no_one_left_posts_nothing_and_loads_no_sdk(
    aws_tables: dict[str, str], redis_standalone: str, management_api: ManagementApi
) -> None:
    extra = {
        **LAMBDA,
        **aws_tables,
        "REDIS_URL": redis_standalone,
        "MANAGEMENT_ENDPOINT": f"http://127.0.0.1:{management_api.server_address[1]}/local",
    }
    loaded = run_fresh(LONE_DISCONNECT + LOADED, extra)
    assert no_sdk(loaded) and management_api.posts == [], (loaded, management_api.posts)


def test_redis_asyncio_is_whole_when_asked_for(redis_standalone: str) -> None:
    """The deferred package body (collab.cache) runs on first use: the asyncio client works."""
    code = f"""
import asyncio, sys, collab.cache, redis
assert "redis.asyncio.client" not in sys.modules
from redis.asyncio import Redis
import redis.asyncio.cluster
assert set(redis.asyncio.__all__) >= {{"Redis", "RedisCluster"}}
async def ping():
    client = Redis.from_url({redis_standalone!r})
    try:
        return await client.ping()
    finally:
        await client.aclose()
assert asyncio.run(ping()) is True
"""
    code += LOADED
    assert run_fresh(code, {})["redis.asyncio.client"] is True


MODEL_TYPES = ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2")
SERVICES = ("dynamodb", "s3", "ssm", "secretsmanager", "sts")


def _load(loader: botocore.loaders.Loader, load: str, *args: str) -> str:
    """What `loader.load(*args)` gives, as JSON with its key order; or that there is none
    (botocore raises UnknownServiceError for some, its subclass, with a longer message)."""
    try:
        return json.dumps(getattr(loader, load)(*args))
    except DataNotFoundError:
        return "no such data"


def test_the_lean_loader_reads_what_botocore_reads() -> None:
    """Same data, same key order, for every model the handlers' clients load and every data
    file a session reads; a service is found wherever botocore finds it."""
    ours = aws_clients._loader(aws_clients.session())
    botocores = botocore.loaders.create_loader()
    assert ours.search_paths == botocores.search_paths
    for service in SERVICES:
        for type_name in MODEL_TYPES:
            assert _load(ours, "load_service_model", service, type_name) == _load(
                botocores, "load_service_model", service, type_name
            ), (service, type_name)
    for name in (
        "endpoints",
        "partitions",
        "_retry",
        "sdk-default-configuration",
        "sdk-default-configuration",
    ):
        assert _load(ours, "load_data", name) == _load(botocores, "load_data", name), name
    for type_name in MODEL_TYPES:
        found, theirs = (
            set(ours.list_available_services(type_name)),
            set(botocores.list_available_services(type_name)),
        )
        assert found >= theirs, type_name
        for extra in sorted(found - theirs)[:5]:  # a directory without such a model
            with pytest.raises(DataNotFoundError):
                ours.load_service_model(extra, type_name)
    with pytest.raises(DataNotFoundError):
        ours.load_service_model("no-such-service", "service-2")


def test_the_session_builds_its_clients_with_the_lean_loader() -> None:
    loader = aws_clients.session().get_component("data_loader")
    assert type(loader).__name__ == "Loader" and type(loader).__module__ == "collab.aws_clients", loader
    assert aws_clients.client("dynamodb").meta.service_model.operation_model("Query").name == "Query"


def test_a_lazy_client_is_built_on_first_use_and_is_the_real_client(aws_tables: dict[str, str]) -> None:
    s3 = aws_clients.LazyClient("s3")
    assert not s3.built
    bucket = aws_tables["SNAPSHOT_BUCKET"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"payload")
    assert s3.built
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"payload"
    # What collab.blobs catches for a superseded snapshot.
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="absent")


def test_clients_share_one_session() -> None:
    first, second = aws_clients.client("dynamodb"), aws_clients.client("dynamodb")
    assert first is not second
    assert aws_clients.session() is aws_clients.session()


@pytest.mark.parametrize("entry", ["messages", "disconnect", "connect", "authorizer"])
@pytest.mark.parametrize("init_type", ["provisioned-concurrency", "on-demand"])
def test_provisioned_environments_build_while_importing(
    entry: str, init_type: str, aws_tables: dict[str, str]
) -> None:
    """Ahead of traffic the init builds everything; on demand the first request does."""
    # Ahead of traffic, awscrt too: what the first call to DynamoDB would load.
    if entry in ("messages", "disconnect"):
        built = "__import__('collab.runtime').runtime._runtime is not None and '_awscrt' in sys.modules"
    else:
        built = f"entry.{entry}._dependencies.cache_info().currsize == 1 and '_awscrt' in sys.modules"
    code = f"import json, sys, entry.{entry}; print(json.dumps({{'built': {built}}}))"
    extra = {
        **LAMBDA,
        **aws_tables,
        "REDIS_URL": "redis://127.0.0.1:1",
        "AUTH_MODE": "hs256",
        "JWT_SECRET": "s" * 40,
        "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
    }
    assert run_fresh(code, extra)["built"] is (init_type == "provisioned-concurrency")
