"""The AWS clients of the handlers. DynamoDB, EventBridge, SSM and Secrets Manager: the lean
JSON clients of collab.aws_json (awscrt, no SDK imported). S3: botocore's, from one
session per process, built on first use (`LazyClient`), imported only then.

Why botocore and not boto3 for S3: a boto3 client is a botocore client (same class, same
calls, same credential chain, same AWS_ENDPOINT_URL_<SERVICE> overrides), and the handlers
use nothing boto3 adds (resources, the S3 transfer manager). Importing boto3 still costs
s3transfer, multiprocessing and concurrent.futures, and its default session does extra
set-up per client (docs/benchmarks.md, "Cold start", has the figures).

botocore's loader here is its own minus two costs of a first client (`_loader`; about 45
ms of CPU, docs/benchmarks.md "Cold start, second pass"). To tell whether a service exists,
botocore lists all ~450 directories of its data folder and stats every version's model
file, once for the client's model and again for its endpoint rules (~30 ms); and it
decodes every JSON file (the 1.25 MB endpoints.json, S3's model) into OrderedDicts, 2-3x
slower than plain dicts, which keep insertion order as well.

S3 holds only payloads over a DynamoDB item (collab.blobs) and exports, which most
environments never see, and its client is the most expensive to build (S3's model is the
largest): hence built on first use.

No dual-stack endpoints, in a stage with egress ipv6 too: the VPC functions call DynamoDB
and S3 only, and the VPC's free gateway endpoints serve their regional names over IPv4
(the route tables send the services' IPv4 prefix lists to them). A dual-stack name also
resolves to IPv6 addresses, which a dual-stack host tries first (or, with awscrt, races),
so those calls would leave through the egress-only internet gateway to the public
endpoints instead: it would work, and give up the private path for nothing. EventBridge is reached by the dual-stack name
the stage sets in AWS_ENDPOINT_URL_EVENTBRIDGE (infra/events.py). The functions outside
the VPC (the authorizer reading its secret from SSM or Secrets Manager) reach the
regional names directly either way.
"""

from __future__ import annotations

import json
import os
import threading
from typing import TYPE_CHECKING, Any

from collab import aws_json, tracing

if TYPE_CHECKING:
    import botocore.session

# Every call tried up to four times, the first and three retries: what the handlers' botocore
# clients did with Config(retries={"max_attempts": 3}), botocore's count of retries.
MAX_ATTEMPTS = 4
JSON_SERVICES = {
    "dynamodb": aws_json.DYNAMODB,
    "events": aws_json.EVENTBRIDGE,
    "ssm": aws_json.SSM,
    "secretsmanager": aws_json.SECRETS_MANAGER,
}

_session: botocore.session.Session | None = None
# botocore sessions are not thread-safe while building clients; clients are.
_lock = threading.Lock()


def json_client(service: str, max_attempts: int = MAX_ATTEMPTS) -> aws_json.JsonClient:
    """A lean client of `service` ("dynamodb", "events", "ssm", "secretsmanager") in the
    environment's region (AWS_REGION on Lambda)."""
    return aws_json.JsonClient(JSON_SERVICES[service], max_attempts=max_attempts)


def _loader(shared: botocore.session.Session) -> Any:
    import botocore.loaders

    class PlainJSONFiles(botocore.loaders.JSONFileLoader):
        """botocore's file loader, decoding into dicts rather than OrderedDicts (the order is
        the same; nothing in botocore uses OrderedDict's own methods on loaded data)."""

        def _load_file(self, full_path: str, open_method: Any) -> Any:
            if not os.path.isfile(full_path):
                return None
            with open_method(full_path, "rb") as fp:
                return json.loads(fp.read().decode("utf-8"))

    class Loader(botocore.loaders.Loader):
        FILE_LOADER_CLASS = PlainJSONFiles

        @botocore.loaders.instance_cache
        def list_available_services(self, type_name: str) -> list[str]:
            """Every directory of the search path, without looking inside for `type_name`'s
            file: one scandir per path instead of a listdir and stats per service. A
            directory without that file then fails its load with DataNotFoundError rather
            than UnknownServiceError, its subclass, which is what botocore's callers catch."""
            services: set[str] = set()
            for path in self._potential_locations():
                with os.scandir(path) as entries:
                    services.update(entry.name for entry in entries if entry.is_dir())
            return sorted(services)

    # The same search path botocore would use (AWS_DATA_PATH first, then ~/.aws/models,
    # then its own data), in the same order.
    default = botocore.loaders.create_loader(shared.get_config_variable("data_path"))
    return Loader(extra_search_paths=list(default.search_paths), include_default_search_paths=False)


def session() -> botocore.session.Session:
    global _session
    with _lock:
        if _session is None:
            import botocore.session

            _session = botocore.session.get_session()
            _session.register_component("data_loader", _loader(_session))
        return _session


def client(service: str, max_attempts: int = MAX_ATTEMPTS) -> Any:
    """botocore's client of `service` in the environment's region, retrying as the JSON
    clients do, its calls traced when the invocation is (collab.tracing)."""
    from botocore.config import Config

    shared = session()
    tracing.patch_botocore()
    config = Config(retries={"total_max_attempts": max_attempts, "mode": "standard"}, tcp_keepalive=True)
    with _lock:
        return shared.create_client(service, config=config)


_OWN = frozenset({"_service", "_max_attempts", "_client", "_build_lock"})


class LazyClient:
    """botocore's client of `service`, built on its first attribute access (a call,
    `.exceptions`, `.meta`)."""

    def __init__(self, service: str, max_attempts: int = MAX_ATTEMPTS) -> None:
        self._service = service
        self._max_attempts = max_attempts
        self._client: Any = None
        self._build_lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._client is not None

    def __getattr__(self, name: str) -> Any:
        # Only reached for what this object lacks, i.e. the client's own attributes.
        if name in _OWN:  # not set yet (a copy, or a failed __init__): no recursion
            raise AttributeError(name)
        if self._client is None:
            with self._build_lock:
                if self._client is None:
                    self._client = client(self._service, self._max_attempts)
        return getattr(self._client, name)
