"""Create the template's AWS resources in the emulator, from the template's own properties."""

from __future__ import annotations

import secrets as secrets_module
from typing import Any

import boto3

from .template import Stack

_TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "BillingMode",
               "StreamSpecification", "SSESpecification")


def table_kwargs(props: dict[str, Any]) -> dict[str, Any]:
    """``create_table`` arguments from an ``AWS::DynamoDB::Table``'s properties."""
    kwargs = {k: props[k] for k in _TABLE_KEYS if k in props}
    kwargs["TableName"] = props["TableName"]
    kwargs.setdefault("BillingMode", "PAY_PER_REQUEST")
    if "SSESpecification" in kwargs:
        kwargs["SSESpecification"] = {"Enabled": bool(kwargs["SSESpecification"].get("SSEEnabled", True))}
    return kwargs


def lifecycle_rules(props: dict[str, Any]) -> list[dict[str, Any]]:
    """S3 API lifecycle rules from CloudFormation's spelling of them."""
    rules = []
    for rule in props.get("Rules", []):
        api_rule: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule["Status"],
                                    "Filter": {"Prefix": rule.get("Prefix", "")}}
        if "ExpirationInDays" in rule:
            api_rule["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
        if "AbortIncompleteMultipartUpload" in rule:
            days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            api_rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
        rules.append(api_rule)
    return rules


def provision(stack: Stack, *, session: boto3.session.Session | None = None) -> dict[str, str]:
    """Create tables, buckets, buses, queues and secrets; returns {logical id: physical name}."""
    session = session or boto3.session.Session(region_name=stack.region)
    created: dict[str, str] = {}
    dynamodb = session.client("dynamodb")
    for logical_id, props in stack.resources_of("AWS::DynamoDB::Table"):
        dynamodb.create_table(**table_kwargs(props))
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=props["TableName"], TimeToLiveSpecification=ttl)
        created[logical_id] = props["TableName"]
    s3: Any = session.client("s3")
    for logical_id, props in stack.resources_of("AWS::S3::Bucket"):
        name = stack.physical_name(logical_id)
        s3.create_bucket(Bucket=name)
        if "LifecycleConfiguration" in props:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": lifecycle_rules(props["LifecycleConfiguration"])})
        if "CorsConfiguration" in props:
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": [
                {{"MaxAge": "MaxAgeSeconds", "ExposedHeaders": "ExposeHeaders"}.get(k, k): v  # CloudFormation -> S3 API
                 for k, v in rule.items() if k != "Id"}
                for rule in props["CorsConfiguration"]["CorsRules"]]})
        created[logical_id] = name
    events = session.client("events")
    for logical_id, _props in stack.resources_of("AWS::Events::EventBus"):
        name = stack.physical_name(logical_id)
        events.create_event_bus(Name=name)
        created[logical_id] = name
    sqs = session.client("sqs")
    for logical_id, _props in stack.resources_of("AWS::SQS::Queue"):
        name = stack.physical_name(logical_id)
        sqs.create_queue(QueueName=name)
        created[logical_id] = name
    secrets = session.client("secretsmanager")
    for logical_id, props in stack.resources_of("AWS::SecretsManager::Secret"):
        name = stack.physical_name(logical_id)
        generated = props.get("GenerateSecretString")
        value = secrets_module.token_urlsafe(48) if generated is not None else str(props.get("SecretString", ""))
        secrets.create_secret(Name=name, SecretString=value)  # generated anew for each emulator, as in AWS
        created[logical_id] = name
    return created
