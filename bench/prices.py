"""The one price table of the cost model (bench/cost.py, docs/cost.md): AWS list prices in
us-east-1, on-demand, without free tiers, Savings Plans or volume tiers beyond the first.

Each price names the AWS pricing page it belongs to (`url`) and where the value was read
(`seen`): this machine cannot open aws.amazon.com live, so every value was looked up in a
stored copy of public pages on PRICES_DATE. `seen` says "AWS page" when the stored copy
was AWS's own pricing page or blog, "third party" when only other sites' summaries of that
page were found (then the value is the one they agree on), and "not verified" when no
source for the value was found at all (the value is then what the project used before,
and says so). Check them against the `url`s before relying on a figure.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_DATE = "2026-12-01"
REGION = "us-east-1"
HOURS_PER_MONTH = 730  # AWS's convention for monthly estimates (24 x 365 / 12)


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    url: str
    seen: str
    note: str = ""


API_GATEWAY = "https://aws.amazon.com/api-gateway/pricing/"
LAMBDA = "https://aws.amazon.com/lambda/pricing/"
DYNAMODB = "https://aws.amazon.com/dynamodb/pricing/on-demand/"
S3 = "https://aws.amazon.com/s3/pricing/"
ELASTICACHE = "https://aws.amazon.com/elasticache/pricing/"
VPC = "https://aws.amazon.com/vpc/pricing/"
PRIVATELINK = "https://aws.amazon.com/privatelink/pricing/"
SECRETS_MANAGER = "https://aws.amazon.com/secrets-manager/pricing/"
KMS = "https://aws.amazon.com/kms/pricing/"
CLOUDWATCH = "https://aws.amazon.com/cloudwatch/pricing/"
XRAY = "https://aws.amazon.com/xray/pricing/"
SNS = "https://aws.amazon.com/sns/pricing/"
EC2_TRANSFER = "https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer"

PRICES: dict[str, Price] = {
    # -- API Gateway, WebSocket APIs ---------------------------------------------------------
    "apigw_message": Price(
        1.00 / 1e6,
        "message (each 32 KB of a message is one), in or out, first 1 billion a month",
        API_GATEWAY,
        "third party (awsforengineers.com 2025-05, amnic.com)",
    ),
    "apigw_connection_minute": Price(
        0.25 / 1e6, "connection-minute", API_GATEWAY, "third party (amnic.com, citing the AWS page)"
    ),
    "data_transfer_out_gb": Price(
        0.09,
        "GB out to the internet (first 10 TB a month; API Gateway bills it at EC2 rates)",
        EC2_TRANSFER,
        "third party (awsforengineers.com, amnic.com)",
        "the first 100 GB a month of an account are free; not applied here",
    ),
    # -- Lambda (arm64) ------------------------------------------------------------------------
    "lambda_request": Price(
        0.20 / 1e6, "invocation", LAMBDA, "third party (cloudchipr.com, several course notes)"
    ),
    "lambda_gb_second_arm": Price(
        0.0000133334,
        "GB-second, arm64, first 7.5 billion GB-s a month",
        LAMBDA,
        "third party (cloudchipr.com 2024)",
        "billed per 1 ms; the INIT phase of on-demand ZIP functions is billed too since "
        "2025-08-01 (AWS Compute Blog, 'AWS Lambda standardizes billing for INIT Phase', "
        "read in a stored mirror)",
    ),
    # -- DynamoDB, on-demand, Standard table class -------------------------------------------
    "dynamodb_wru": Price(
        0.625 / 1e6,
        "write request unit",
        DYNAMODB,
        "third party (airbyte.com)",
        "the November 2024 price (half the earlier $1.25); some pages still show the old one",
    ),
    "dynamodb_rru": Price(
        0.125 / 1e6, "read request unit", DYNAMODB, "third party (airbyte.com)", "half the earlier $0.25"
    ),
    "dynamodb_storage_gb_month": Price(
        0.25, "GB-month of table storage", DYNAMODB, "not verified", "first 25 GB free; not applied"
    ),
    # -- S3 Standard ---------------------------------------------------------------------------
    "s3_tier1_request": Price(
        0.005 / 1000, "PUT, COPY, POST or LIST request", S3, "third party (c3x.dev, cloudkaramchari.com)"
    ),
    "s3_tier2_request": Price(0.0004 / 1000, "GET, HEAD or other request", S3, "third party (c3x.dev)"),
    "s3_storage_gb_month": Price(0.023, "GB-month, first 50 TB", S3, "third party (cloudburn.io 2026-03)"),
    # -- ElastiCache Serverless for Valkey ----------------------------------------------------
    "valkey_ecpu": Price(
        0.0023 / 1e6,
        "ECPU (1 per KB transferred by a simple command)",
        ELASTICACHE,
        "third party (usage.ai 2026-06, citing pump.co and AWS)",
        "the AWS page itself was not found in the stored copies",
    ),
    "valkey_storage_gb_hour": Price(
        0.084,
        "GB-hour of data stored, metered at no less than 100 MB per cache",
        ELASTICACHE,
        "third party (usage.ai 2026-06; the 100 MB minimum also cur.vantage.sh)",
    ),
    "valkey_minimum_gb": Price(
        0.1,
        "GB: the storage a Valkey serverless cache is always metered for",
        ELASTICACHE,
        "third party (cur.vantage.sh)",
    ),
    # -- VPC -----------------------------------------------------------------------------------
    "nat_gateway_hour": Price(
        0.045, "NAT gateway-hour", VPC, "third party (basavytix.com, cloudburn.io 2026-02)"
    ),
    "nat_gateway_gb": Price(
        0.045, "GB processed by a NAT gateway, either direction", VPC, "third party (same)"
    ),
    "public_ipv4_hour": Price(
        0.005,
        "public IPv4 address-hour (the NAT gateway's Elastic IP)",
        VPC,
        "AWS page (AWS Networking blog, 'Identify and optimize public IPv4 address usage', stored copy); doit.com",
        "charged since 2024-02-01",
    ),
    "interface_endpoint_az_hour": Price(
        0.01,
        "interface VPC endpoint-hour per availability zone",
        PRIVATELINK,
        "not verified (the stored AWS page showed the per-GB rate, $0.01 for the first PB, not the hourly one)",
    ),
    "egress_only_gateway_hour": Price(
        0.0,
        "egress-only internet gateway (no hourly charge)",
        VPC,
        "not verified",
        "IPv6 traffic out of it is billed as data transfer; to a same-region AWS endpoint, not verified",
    ),
    # -- secrets and keys ------------------------------------------------------------------------
    "secret_month": Price(
        0.40, "Secrets Manager secret-month", SECRETS_MANAGER, "third party (hivebook.wiki)"
    ),
    "secret_api_call": Price(
        0.05 / 10000, "Secrets Manager API call", SECRETS_MANAGER, "third party (hivebook.wiki)"
    ),
    "kms_key_month": Price(
        1.00, "customer managed KMS key-month", KMS, "AWS page (aws.amazon.com/kms/pricing, stored copy)"
    ),
    # -- CloudWatch, X-Ray, SNS --------------------------------------------------------------
    "alarm_month": Price(
        0.10,
        "standard-resolution alarm metric-month",
        CLOUDWATCH,
        "third party (c3x.dev); the stored AWS page showed only its free tier (10 alarm metrics)",
    ),
    "dashboard_month": Price(
        3.00,
        "custom dashboard-month",
        CLOUDWATCH,
        "third party (factualminds.com 2026-06)",
        "an account's first 3 dashboards are free (AWS page, stored copy); not applied",
    ),
    "logs_ingest_gb": Price(
        0.50, "GB of log data ingested (standard class)", CLOUDWATCH, "third party (factualminds.com 2026-06)"
    ),
    "logs_storage_gb_month": Price(0.03, "GB-month of log storage (compressed)", CLOUDWATCH, "not verified"),
    "xray_trace": Price(
        5.00 / 1e6,
        "trace recorded",
        XRAY,
        "AWS page (aws.amazon.com/de/xray/pricing, stored copy)",
        "first 100,000 a month free; not applied",
    ),
    "sns_topic_month": Price(0.0, "SNS topic (no charge at rest; publishes are billed)", SNS, "not verified"),
}


def price(key: str) -> float:
    return PRICES[key].usd
