"""The HTTP API's 303 for an answer over Lambda's response limit, followed by a page on
another origin, through the local stack (infra/storage.py sets the same bucket CORS on AWS)."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid

import pytest
from pycrdt import Doc, Text

from collab import runtime
from devstack import services
from devstack.stack import SNAPSHOT_BUCKET, LocalStack
from tests.e2e.conftest import Scene


def test_a_page_follows_the_303_of_an_answer_over_lambdas_limit_across_origins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stage with CORS origins: a page on one of them asks for a scene over 4 MB and gets
    the API's 303 (with CORS headers); its fetch follows it to the presigned URL of the
    bucket with `Origin: null` (a redirect between two foreign origins), and the bucket
    answers it as CORS requires."""
    page = "https://writers.example"
    with LocalStack(port=0, seed_demo=False, http_cors_origins=(page,)) as stack:
        for key, value in stack.env.items():  # this process's boto3 seeds this stack's moto
            if key.startswith("AWS_"):
                monkeypatch.setenv(key, value)
        scene = Scene(stack, f"scene-{uuid.uuid4().hex[:10]}")
        token = scene.grant("ann", "viewer")
        paste = "".join(uuid.uuid4().hex for _ in range(150_000))  # 4.8 MB that does not compress
        runtime.build(scene.settings()).documents.append(scene.scene_id, _typed(paste))
        call = urllib.request.Request(
            f"{stack.http_url}/scenes/{scene.scene_id}?text=t",
            headers={"authorization": f"Bearer {token}", "origin": page},
        )

        class Stop(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None  # look at the 303 itself

        try:
            urllib.request.build_opener(Stop).open(call, timeout=60)
            raise AssertionError("no redirect")
        except urllib.error.HTTPError as redirect:
            assert redirect.code == 303
            assert redirect.headers["access-control-allow-origin"] == page
            location = redirect.headers["location"]
        follow = urllib.request.Request(location, headers={"origin": "null"})
        with urllib.request.urlopen(follow, timeout=60) as fetched:
            assert fetched.headers["access-control-allow-origin"] in ("*", "null")
            assert fetched.read().decode() == paste
        # moto echoes any Origin even with no CORS rule at all, so the rule itself is what
        # shows the local bucket is set up as the deployed one (infra/storage.py `_cors`).
        rules = services.local_client("s3", stack.moto_url).get_bucket_cors(Bucket=SNAPSHOT_BUCKET)[
            "CORSRules"
        ]
        assert [(r["AllowedMethods"], r["AllowedOrigins"]) for r in rules] == [(["GET", "HEAD"], ["*"])]


def _typed(text: str) -> bytes:
    doc: Doc = Doc()
    doc.get("t", type=Text).insert(0, text)
    return doc.get_update()
