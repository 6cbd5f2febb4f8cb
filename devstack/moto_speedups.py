"""moto made fast enough for a room typing at 50 updates/s (`install()`, called by
devstack/moto_server.py): a faster path through its response serializer for DynamoDB's
AttributeValues, with exactly the output of moto's own, and no full garbage collections
over its tables (emulator/gc_pauses.py).

moto 5.2 writes every response through a serializer driven by botocore's service model
(moto/core/serialize.py): for each member of each structure it builds a context object and
tries up to six alias providers (the member's shape name, its snake_case form, ...) to find
the value in a Python object. DynamoDB's answers are made of AttributeValues, a structure of
ten members, so an item of n attributes costs 10·n of those lookups. Measured on this
machine (bench/moto_cpu.py), half of moto's CPU for a Query of 20 rows went there: the
per-update roster Query (invariant 2) cost moto 9.8 ms of CPU, and moto serves one request
at a time, so in a 20-person room typing at 50 updates/s it was the local stack's bottleneck.
DynamoDB's own CPU is not ours in AWS; on a laptop it is latency on every keystroke.

What moto hands the serializer for an AttributeValue is already a plain dict in wire form,
one type key (`dynamo_to_dict`: binary values as bytes). For such a dict, moto's alias
lookup finds exactly `value[type]` (no alias of S, N, B, SS, NS, BS, M, L, NULL or BOOL
is another of those keys), so `_attribute_value` writes what moto would, without the
lookups: strings through `str`, blobs in base64, lists and maps recursively, booleans as
they are, absent (None) members left out. Anything else (another key, several keys, a map
with an empty key, another type, response transformers in use) goes through moto's code
unchanged.

`COLLAB_MOTO_SPEEDUPS=0` leaves moto as it is (to measure the difference).
`COLLAB_MOTO_CHECK_SERIALIZER=1` in moto's environment serializes every AttributeValue both
ways (moto's all the way down) and fails the request (a 500) when the JSON differs, key
order included; tests/e2e/test_moto_speedups.py runs with it, so a moto upgrade that
changes its serializer shows up there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, MutableMapping
from enum import Enum
from typing import Any

from moto.core import serialize

from emulator.gc_pauses import freeze_after_slow_full_collections

CHECK_ENV = "COLLAB_MOTO_CHECK_SERIALIZER"
OFF_ENV = "COLLAB_MOTO_SPEEDUPS"  # "0": moto's serializer alone (for bench/moto_cpu.py)
ATTRIBUTE_VALUE = "AttributeValue"
# The members of DynamoDB's AttributeValue, by how moto serializes each (shape types:
# string, blob, list of string, list of blob, map, list, boolean).
_STRINGS = frozenset({"S", "N"})
_STRING_SETS = frozenset({"SS", "NS"})
_FLAGS = frozenset({"NULL", "BOOL"})
_MEMBERS = _STRINGS | _STRING_SETS | _FLAGS | {"B", "BS", "M", "L"}


class Unhandled(Exception):
    """A value this path does not write itself: moto's code writes it."""


def _string(value: Any) -> Any:
    # moto's _serialize_type_string.
    if isinstance(value, Enum):
        value = value.value
    return str(value) if value not in [None, {}, []] else value


def _attribute_value(value: Any, base64: Callable[[Any], str]) -> dict[str, Any]:
    # One type key, as moto's DynamoType always has: with several, moto writes them in the
    # model's order, not the dict's.
    if type(value) is not dict or len(value) != 1 or not value.keys() <= _MEMBERS:
        raise Unhandled
    out: dict[str, Any] = {}
    for kind, data in value.items():
        if data is None:
            continue
        if kind in _STRINGS:
            out[kind] = _string(data)
        elif kind == "B":
            out[kind] = base64(data)
        elif kind in _FLAGS:
            out[kind] = data
        elif kind in _STRING_SETS:
            out[kind] = [_string(x) for x in _list(data)]
        elif kind == "BS":
            out[kind] = [base64(x) for x in _list(data)]
        elif kind == "L":
            out[kind] = [None if x is None else _attribute_value(x, base64) for x in _list(data)]
        else:  # M
            # An empty key is moto's own case: its serializer writes that value's members
            # into the map itself (an answer boto3 cannot read). Left to moto, so the answer
            # is still moto's.
            if type(data) is not dict or "" in data:
                raise Unhandled
            out[kind] = {k: _attribute_value(v, base64) for k, v in data.items() if v is not None}
    return out


def _list(data: Any) -> list[Any]:
    if type(data) is not list:
        raise Unhandled
    return data


class DynamoDBSerializer(serialize.JSONSerializer):
    """moto's JSON serializer, with `_attribute_value` for AttributeValues."""

    check = False
    _moto_only = False  # while check mode computes moto's answer, nested values included

    def _serialize_type_structure(
        self, serialized: MutableMapping[str, Any], value: Any, shape: Any, key: str
    ) -> None:
        transformers = getattr(self._value_picker, "response_transformers", None)
        if shape.name == ATTRIBUTE_VALUE and key and not transformers and not self._moto_only:
            try:
                fast = _attribute_value(value, self._base64)
            except Unhandled:
                pass
            else:
                if self.check:
                    self._compare(value, shape, key, fast)
                self._default_serialize(serialized, fast, shape, key)
                return
        super()._serialize_type_structure(serialized, value, shape, key)

    def _compare(self, value: Any, shape: Any, key: str, fast: dict[str, Any]) -> None:
        """moto's own answer for `value`, written by moto's code all the way down; then the
        two compared as JSON text, key order included (so an order moto would not write
        shows too)."""
        expected: dict[str, Any] = {}
        self._moto_only = True
        try:
            super()._serialize_type_structure(expected, value, shape, key)
        finally:
            self._moto_only = False
        theirs = expected.get(self.get_serialized_name(shape, key))
        if json.dumps(theirs) != json.dumps(fast):
            raise AssertionError(f"AttributeValue {value!r}: moto {theirs!r}, fast {fast!r}")


def install() -> None:
    """Use DynamoDBSerializer for DynamoDB's JSON answers (moto's registry of per-service
    serializers, which it keeps for S3 and SQS) and freeze what survives full collections;
    neither with COLLAB_MOTO_SPEEDUPS=0."""
    if _flag(OFF_ENV, default=True) is False:
        return
    DynamoDBSerializer.check = _flag(CHECK_ENV, default=False)
    serialize.SERVICE_SPECIFIC_SERIALIZERS.setdefault("dynamodb", {})["json"] = DynamoDBSerializer
    freeze_after_slow_full_collections()


def _flag(name: str, default: bool) -> bool:
    text = os.environ.get(name, "").strip().lower()
    return default if not text else text in {"1", "true", "yes"}
