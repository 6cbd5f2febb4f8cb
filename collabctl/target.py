"""Which stack a collabctl command talks to, and errors that say so.

Settings come from flags, then the environment, then (only when the environment names no
AWS target at all) the state file of a running `make dev` (collabctl/local_state.py). So
on a checkout with `make dev` running the README's commands need nothing exported, and a
shell set up for AWS (AWS_PROFILE, credentials, table names) is never sent to moto.

Every AWS client is made here, so an error can name the table, the endpoint and the region
it came from, and which settings to change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from collab import settings
from collab.settings import MissingSetting
from collabctl.local_state import LocalState, display_path, read_state, state_file_path

# Any of these in the environment means "I am aiming somewhere": the local state is then
# not used at all (mixing an AWS profile with moto's endpoint would go wrong silently).
AIMING_ENV = (
    settings.ACCESS_TABLE,
    settings.CONNECTIONS_TABLE,
    settings.DOCUMENTS_TABLE,
    settings.MANAGEMENT_ENDPOINT,
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
)
# `make dev` prints the emulator's Management API as MANAGEMENT_URL; both names work.
MANAGEMENT_URL = "MANAGEMENT_URL"
# boto3's per-service endpoint variables, for the services collabctl uses.
ENDPOINT_ENV = {"dynamodb": "AWS_ENDPOINT_URL_DYNAMODB", "s3": "AWS_ENDPOINT_URL_S3"}


class CommandError(Exception):
    """An error the user can act on: printed as one line, exit status 1."""


@dataclass
class Target:
    env: Mapping[str, str]  # the process environment, over the local state's if it is used
    local: LocalState | None = None  # the running local stack whose settings are used
    stale: LocalState | None = None  # a state file left by a stack that no longer runs
    last_call: tuple[Any, str | None] | None = None  # the client of the last AWS call, and its table

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None) -> Target:
        environ = dict(os.environ if environ is None else environ)
        path = state_file_path(environ)
        if path is None or any(environ.get(name) for name in AIMING_ENV):
            return cls(environ)
        state = read_state(path)
        if state is None:
            return cls(environ)
        if not state.running:
            return cls(environ, stale=state)
        # The stack's own AWS settings win: its tables live in moto under its region, so an
        # exported AWS_REGION must not send the command to an empty one.
        aws = {name: value for name, value in state.env.items() if name.startswith("AWS_")}
        return cls({**state.env, **environ, **aws}, local=state)

    # -- settings ------------------------------------------------------------------------

    def get(self, name: str, flag: str | None = None) -> str:
        return flag or self.env.get(name, "")

    def required(self, name: str, flag: str | None = None, option: str | None = None) -> str:
        value = self.get(name, flag)
        if not value:
            raise CommandError(self.missing(name, option))
        return value

    def missing(self, name: str, option: str | None = None) -> str:
        how = f"set {name}" + (f" or pass {option}" if option else "")
        return f"required setting {name} is not set: {how}, or {self.local_hint()}"

    def local_hint(self) -> str:
        if self.stale is not None:
            return (
                f"start the local stack again with `make dev` ({display_path(self.stale.path)} is left "
                f"from one that no longer runs, pid {self.stale.pid})"
            )
        return "start the local stack with `make dev` in this checkout, which collabctl then finds by itself"

    def management_endpoint(self, flag: str | None) -> str:
        return flag or self.env.get(settings.MANAGEMENT_ENDPOINT) or self.env.get(MANAGEMENT_URL, "")

    # -- clients -------------------------------------------------------------------------

    def client(self, service: str, endpoint_url: str | None = None) -> Any:
        """A boto3 client: the local stack's endpoint, region and credentials when it is
        the target, else boto3's usual chain (profile, AWS_REGION, AWS_ENDPOINT_URL_*)."""
        import boto3  # imported on use: `token` makes no AWS call

        options: dict[str, Any] = {}
        if endpoint_url:
            options["endpoint_url"] = endpoint_url
        if self.local is not None:
            env = self.env
            options.setdefault("endpoint_url", env.get(ENDPOINT_ENV.get(service, "")) or None)
            options["region_name"] = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
            options["aws_access_key_id"] = env.get("AWS_ACCESS_KEY_ID")
            options["aws_secret_access_key"] = env.get("AWS_SECRET_ACCESS_KEY")
        try:
            client = boto3.client(service, **options)
        except NoRegionError:
            raise CommandError(
                "no AWS region is set: set AWS_REGION (or AWS_DEFAULT_REGION, or a region in your "
                f"AWS profile) to reach AWS, or {self.local_hint()}"
            ) from None
        # Remember which client and table each call is about: a ResourceNotFoundException
        # says neither.
        client.meta.events.register(
            f"provide-client-params.{client.meta.service_model.service_id.hyphenize()}",
            lambda params, **_: self._note_call(client, params),
        )
        return client

    def _note_call(self, client: Any, params: Mapping[str, Any]) -> None:
        table = params.get("TableName")
        self.last_call = (client, None if table is None else str(table))

    # -- errors --------------------------------------------------------------------------

    def where(self) -> str:
        return f"; {self.local.where}" if self.local is not None else ""

    def explain(self, error: Exception) -> str:
        """One line saying what failed, on which table or endpoint, and what to set."""
        if isinstance(error, CommandError):
            return str(error)
        if isinstance(error, MissingSetting):
            return self.missing(error.name)
        if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
            return (
                f"no AWS credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY), or {self.local_hint()}"
            )
        if isinstance(error, EndpointConnectionError):
            endpoint = error.kwargs.get("endpoint_url", "the endpoint")
            if self.local is not None:
                return f"cannot reach {endpoint} ({self.local.where}): is `make dev` still running?"
            return f"cannot reach {endpoint}: check the endpoint (AWS_ENDPOINT_URL_*, --management-endpoint) and the network"
        if isinstance(error, ClientError) and self.last_call is not None:
            return self._client_error(error, *self.last_call)
        return str(error)

    def _client_error(self, error: ClientError, client: Any, table: str | None) -> str:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        endpoint = client.meta.endpoint_url
        region = client.meta.region_name
        at = f"at {endpoint} (region {region}{self.where()})"
        if code == "ResourceNotFoundException" and table:
            return (
                f"DynamoDB table {table} does not exist {at}: check the table name "
                "(flag or environment variable) and the region"
            )
        about = f" on table {table}" if table else ""
        return f"{error.operation_name} failed{about} {at}: {code}: {message}"
