"""What a cold environment imports and builds (docs/benchmarks.md, "Cold start"): no boto3
in any function, no awscrt in the two that never post, S3's client only once a payload
needs it; and that all of them still reach DynamoDB and S3 (moto) that way. The import
checks run in fresh interpreters with the variables Lambda sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    "for m in ('boto3', 's3transfer', '_awscrt', 'awscrt', 'jwt', 'redis')}))"
)


@pytest.mark.parametrize("entry", ["connect", "authorizer"])
def test_connect_and_the_authorizer_reach_dynamodb_without_awscrt_on_lambda(
    entry: str, aws_tables: dict[str, str]
) -> None:
    """The real read they make first (the caller's role), signed by botocore's own signer."""
    from collab.access import SceneAccess

    SceneAccess(aws_tables["ACCESS_TABLE"]).grant("scene-cold", "user-ada", "editor")
    code = (
        f"import entry.{entry} as e, botocore.compat; "
        "access = e._dependencies()[1]; "
        "assert not botocore.compat.HAS_CRT; "
        "assert access.get_role('scene-cold', 'user-ada') == 'editor', 'role'; " + LOADED
    )
    extra = {**LAMBDA, **aws_tables, "AUTH_MODE": "hs256", "JWT_SECRET": "s" * 40}
    loaded = run_fresh(code, extra)
    assert loaded["_awscrt"] is False and loaded["awscrt"] is False, loaded
    assert loaded["boto3"] is False and loaded["s3transfer"] is False, loaded
    assert loaded["redis"] is False, loaded


def test_off_lambda_awscrt_stays_importable_beside_the_entry_points() -> None:
    """A test process (or a tool) imports the outbox too, which needs awscrt."""
    loaded = run_fresh("import entry.connect, entry.authorizer, collab.outbox; " + LOADED, {})
    assert loaded["_awscrt"] is True, loaded


@pytest.mark.parametrize("entry", ["messages", "disconnect"])
def test_the_per_message_runtime_builds_without_boto3_and_without_an_s3_client(
    entry: str, aws_tables: dict[str, str]
) -> None:
    code = (
        f"import entry.{entry}; from collab import runtime, aws_clients; rt = runtime.current(); "
        "import gc; lazy = [o for o in gc.get_objects() if isinstance(o, aws_clients.LazyClient)]; "
        "assert lazy and not any(c.built for c in lazy), 's3 built'; " + LOADED
    )
    loaded = run_fresh(code, {**LAMBDA, **aws_tables, "REDIS_URL": "redis://127.0.0.1:1"})
    assert loaded["boto3"] is False and loaded["s3transfer"] is False, loaded
    assert loaded["_awscrt"] is True, loaded  # the outbox posts with it


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
    if entry in ("messages", "disconnect"):
        built = "__import__('collab.runtime').runtime._runtime is not None"
    else:
        built = f"entry.{entry}._dependencies.cache_info().currsize == 1"
    code = f"import json, entry.{entry}; print(json.dumps({{'built': {built}}}))"
    extra = {
        **LAMBDA,
        **aws_tables,
        "REDIS_URL": "redis://127.0.0.1:1",
        "AUTH_MODE": "hs256",
        "JWT_SECRET": "s" * 40,
        "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
    }
    assert run_fresh(code, extra)["built"] is (init_type == "provisioned-concurrency")
