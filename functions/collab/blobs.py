"""Payloads too big for a DynamoDB item (400 KB) live in S3; small ones stay inline.

A 5 MB screenplay snapshot or a 1 MB paste must be storable, and an item holding a
reference costs the same read as one holding the bytes."""

from __future__ import annotations

from typing import Any

# Leaves room under the 400 KB item limit for the key and the other attributes.
INLINE_LIMIT = 350_000


class BlobMissing(LookupError):
    """An S3 object a DynamoDB item points to is gone (a superseded snapshot, or a log entry
    compacted since its item was read)."""


class BlobStore:
    def __init__(self, s3: Any, bucket: str | None) -> None:
        self._s3 = s3
        self._bucket = bucket

    def attributes(self, key: str, data: bytes, reserve: int = 0) -> dict[str, Any]:
        """The DynamoDB attributes that hold `data`: inline, or a pointer to S3. `reserve`:
        bytes the item's other attributes take beyond the usual few (a snapshot's summary)."""
        if len(data) + reserve <= INLINE_LIMIT:
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
        self.delete_keys([item["s3Key"]["S"] for item in items if "s3Key" in item])

    def delete_keys(self, keys: list[str]) -> None:
        """Deleting a key that holds nothing is not an error (S3 answers the same)."""
        if self._bucket is None:
            return
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            self._s3.delete_objects(
                Bucket=self._bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            )

    def share(self, key: str, data: bytes, content_type: str, expires_seconds: int = 300) -> str:
        """Stores `data` at `key` and returns a presigned GET URL of it: how an answer over
        Lambda's 6 MB response limit reaches an HTTP client (collab.http_routes)."""
        if self._bucket is None:
            raise RuntimeError("sharing a payload needs SNAPSHOT_BUCKET, which is not set")
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type)
        url: str = self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_seconds
        )
        return url

    def keys_older_than(self, prefix: str, cutoff: float, limit: int) -> list[str]:
        """Keys under `prefix` last written before `cutoff` (epoch seconds), from the first
        `limit` in key order. Ids are time-ordered, so those are the oldest."""
        if self._bucket is None:
            return []
        page = self._s3.list_objects_v2(Bucket=self._bucket, Prefix=prefix, MaxKeys=limit)
        return [obj["Key"] for obj in page.get("Contents", []) if obj["LastModified"].timestamp() < cutoff]
