"""Outbox faults the emulator cannot produce (it never throttles): API Gateway's
LimitExceededException is retried with backoff, a 410 is reported as gone, any other
failure is logged without failing the other recipients. botocore's Stubber plays the
Management API's answers; the real botocore client parses them."""

from __future__ import annotations

import boto3
from botocore.config import Config
from botocore.stub import Stubber

from collab.outbox import Outbox


def stubbed() -> tuple[Outbox, Stubber]:
    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url="http://127.0.0.1:9/local",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    return Outbox("http://127.0.0.1:9/local", workers=1, client=client), Stubber(client)


def test_throttled_posts_are_retried_then_delivered() -> None:
    outbox, stub = stubbed()
    for _ in range(2):
        stub.add_client_error("post_to_connection", "LimitExceededException", http_status_code=429)
    stub.add_response("post_to_connection", {}, {"ConnectionId": "a=", "Data": b"hi"})
    with stub:
        assert outbox.send("a=", "hi") is True
        stub.assert_no_pending_responses()


def test_gone_connections_are_reported_and_others_still_served() -> None:
    outbox, stub = stubbed()
    stub.add_response("post_to_connection", {}, {"ConnectionId": "a=", "Data": b"x"})
    stub.add_client_error("post_to_connection", "GoneException", http_status_code=410)
    stub.add_client_error("post_to_connection", "InternalServerError", http_status_code=500)
    stub.add_response("post_to_connection", {}, {"ConnectionId": "d=", "Data": b"x"})
    with stub:
        gone = outbox.send_all(["a=", "b=", "c=", "d="], "x")
        stub.assert_no_pending_responses()
    assert gone == ["b="]  # a 500 is not proof the peer left: the periodic resync repairs it


def test_big_messages_go_out_as_ordered_chunk_frames() -> None:
    outbox, stub = stubbed()
    text = '{"type":"update","data":"' + "A" * 300_000 + '"}'
    frames = 3
    for _ in range(frames):
        stub.add_response("post_to_connection", {})
    with stub:
        assert outbox.send("a=", text) is True
        stub.assert_no_pending_responses()


def test_a_403_for_an_unknown_connection_is_gone_but_a_permission_403_is_not() -> None:
    """Review M10: API Gateway answers 403 ForbiddenException for a connection id it does
    not know; counting it as delivered kept the row (and a post per message) for hours. A
    403 that says the function lacks permission is a deployment fault: evicting on it would
    empty every room."""
    outbox, stub = stubbed()
    stub.add_client_error("post_to_connection", "ForbiddenException", "Forbidden", http_status_code=403)
    stub.add_client_error(
        "post_to_connection",
        "AccessDeniedException",
        "User: arn:aws:sts::1:assumed-role/x is not authorized to perform: execute-api:ManageConnections",
        http_status_code=403,
    )
    stub.add_client_error(
        "post_to_connection",
        "ForbiddenException",
        "User: arn:aws:sts::1:assumed-role/x is not authorized to perform: execute-api:ManageConnections",
        http_status_code=403,
    )
    with stub:
        assert outbox.send_all(["unknown=", "denied=", "denied-too="], "x") == ["unknown="]
        stub.assert_no_pending_responses()


def test_closing_survives_a_transport_error() -> None:
    """Review M9: a refusal (`forbidden`, `token_expired`) closes the connection; a timeout
    there used to escape and crash the handler instead of finishing the reply."""
    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url="http://127.0.0.1:9/local",  # nothing listens on the discard port
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(connect_timeout=0.5, retries={"max_attempts": 1}),
    )
    outbox = Outbox("http://127.0.0.1:9/local", workers=1, client=client)
    outbox.close("a=")  # logs the failure, raises nothing
