"""The DynamoDB tables of functions/tables.json and the S3 bucket for large payloads.

Tables: on-demand, point-in-time recovery, encrypted with the AWS managed key, TTL where
tables.json names the attribute the code writes. The bucket holds snapshots and updates
over DynamoDB's 400 KB item limit (collab/blobs.py), under `scenes/`, and saved versions
over it (collab/versions.py), under `versions/`, which expire with versionRetentionDays, and
the HTTP API's answers over Lambda's response limit, under `exports/`, kept a day.
"""

from __future__ import annotations

from aws_cdk import CfnElement, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import StageConfig
from infra.removal import removal_policy
from infra.specs import TableSpec

# The bucket prefixes collab/durable_log.py and collab/versions.py write under.
BLOB_PREFIX = "scenes/"
VERSIONS_PREFIX = "versions/"
# Answers over Lambda's response limit (collab/http_routes.py), fetched once by presigned URL.
EXPORTS_PREFIX = "exports/"


class Storage(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, tables: dict[str, TableSpec]
    ) -> None:
        super().__init__(scope, construct_id)
        self.specs = tables
        self.tables: dict[str, dynamodb.Table] = {
            name: self._table(config, spec) for name, spec in tables.items()
        }
        self.bucket = s3.Bucket(
            self,
            "Snapshots",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            removal_policy=removal_policy(config),
            # A dev stage's `cdk destroy` empties the bucket instead of failing on it.
            auto_delete_objects=not config.retain,
            lifecycle_rules=self._lifecycle_rules(config),
            cors=self._cors(config),
        )

    @staticmethod
    def _cors(config: StageConfig) -> list[s3.CorsRule] | None:
        """A page the HTTP API admits (httpCorsOrigins) follows its 303 for an answer over
        Lambda's response limit to a presigned URL of this bucket: without CORS headers
        its fetch fails there. Any origin: the browser sends `Origin: null` after a
        redirect from one foreign origin to another (the Fetch standard's tainted origin),
        which no list of origins matches; GET and HEAD only, no credentials, and the
        presigned URL, not CORS, is what grants the read."""
        if not config.httpCorsOrigins:
            return None
        return [
            s3.CorsRule(
                allowed_methods=[s3.HttpMethods.GET, s3.HttpMethods.HEAD], allowed_origins=["*"], max_age=3600
            )
        ]

    @staticmethod
    def _lifecycle_rules(config: StageConfig) -> list[s3.LifecycleRule]:
        rules = [
            s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(1)),
            # Their URLs are valid for 5 minutes; a day is S3's shortest expiration.
            s3.LifecycleRule(id="ExpireExports", prefix=EXPORTS_PREFIX, expiration=Duration.days(1)),
        ]
        if config.versionRetentionDays:
            # A day after the version's items expire (their TTL, at the same age), so an
            # entry a listing still shows never names a payload already gone.
            rules.append(
                s3.LifecycleRule(
                    id="ExpireVersions",
                    prefix=VERSIONS_PREFIX,
                    expiration=Duration.days(config.versionRetentionDays + 1),
                )
            )
        return rules

    def _table(self, config: StageConfig, spec: TableSpec) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            spec.name.capitalize(),
            table_name=config.table_name(spec.name),
            partition_key=dynamodb.Attribute(name=spec.partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=spec.sort_key, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=spec.ttl_attribute,
            removal_policy=removal_policy(config),
            deletion_protection=config.retain,
        )

    @property
    def bucket_logical_id(self) -> str:
        bucket = self.bucket.node.default_child
        assert isinstance(bucket, CfnElement)
        return Stack.of(self).get_logical_id(bucket)

    def env(self) -> dict[str, str]:
        """The environment variables naming every table (tables.json "env")."""
        return {spec.env: self.tables[name].table_name for name, spec in self.specs.items()}
