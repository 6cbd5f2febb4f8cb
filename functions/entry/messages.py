"""Lambda entry point of every message route: sync, update, awareness, ping, chunk, $default."""

from __future__ import annotations

# First, before anything imports botocore (see entry.without_crt).
from entry import without_crt  # noqa: F401

# isort: split
from typing import TYPE_CHECKING, Any

from collab import management_client, runtime, session
from collab.observability import logger, metrics, tracer
from entry.ahead_of_traffic import initialised_ahead_of_traffic
from entry.common import begin

if TYPE_CHECKING:  # an annotation only
    from aws_lambda_powertools.utilities.typing import LambdaContext

if initialised_ahead_of_traffic():
    runtime.current()
    management_client.load_awscrt()  # what the first message's posts would load


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt, caller = begin(event)
    # A new environment's first message is a client's sync, answered with posts: awscrt
    # loads on a thread of its own while the sync waits on DynamoDB and Redis, instead of
    # after them (collab.management_client). After the runtime's build, Python work the
    # load would only delay (it holds the GIL). Once per process; a no-op once loaded.
    management_client.load_in_background()
    session.handle_message(rt, caller, event.get("body"))
    return {"statusCode": 200}
