"""Payloads too big for a DynamoDB item (400 KB) live in S3; small ones stay inline.

A 5 MB screenplay snapshot or a 1 MB paste must be storable, and an item holding a
reference costs the same read as one holding the bytes."""

from __future__ import annotations

from typing import Any

# Leaves room under the 400 KB item limit for the key and the other attributes.
INLINE_LIMIT = 350_000


class BlobMissing(LookupError):
    """An S3 object a DynamoDB item points to is gone (a superseded snapshot)."""


class BlobStore:
    def __init__(self, s3: Any, bucket: str | None) -> None:
        self._s3 = s3
        self._bucket = bucket

    def attributes(self, key: str, data: bytes) -> dict[str, Any]:
        """The DynamoDB attributes that hold `data`: inline, or a pointer to S3."""
        if len(data) <= INLINE_LIMIT:
            return {"data": {"B": data}}
        if self._bucket is None:
            raise RuntimeError(f"a {len(data)}-byte payload needs SNAPSHOT_BUCKET, which is not set")
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=data)
        return {"s3Key": {"S": key}}

    def read(self, item: dict[str, Any]) -> bytes:
        if "data" in item:
            return bytes(item["data"]["B"])
        key = item["s3Key"]["S"]
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
        except self._s3.exceptions.NoSuchKey as error:
            raise BlobMissing(key) from error
        return bytes(response["Body"].read())

    def delete(self, items: list[dict[str, Any]]) -> None:
        keys = [item["s3Key"]["S"] for item in items if "s3Key" in item]
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            self._s3.delete_objects(
                Bucket=self._bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            )
