"""EventBridge delivery as ``template.yaml`` wires it, on top of moto.

moto's EventBridge matches events against rules but delivers only to SQS, logs and other buses, not
to Lambda or Step Functions. ``BusRelay`` closes that gap without a second list of rules:

- for every rule in the template (``AWS::Events::Rule`` resources, and ``EventBridgeRule`` /
  ``CloudWatchEvent`` events of functions and state machines) it creates the rule in moto, with the
  template's bus and event pattern, and one SQS *relay queue* as its only target — so moto's own
  matcher decides what each rule receives;
- ``pump()`` drains the relay queues and hands each event to the rule's real targets: a Lambda
  function through ``FunctionRunner.invoke`` (with EventBridge's event shape; a failure is retried
  as Lambda retries an asynchronous invocation, then sent to the function's DeadLetterQueue, or the
  target's DeadLetterConfig), a state machine through ``StartExecution``, a queue through
  ``SendMessage``. ``Input``, ``InputPath`` and ``InputTransformer`` are applied;
- it also runs the template's SQS event sources (``AWS::Lambda::EventSourceMapping`` and functions'
  ``SQS`` events) with Lambda's SQS event shape and partial batch responses, applies the queues'
  ``VisibilityTimeout`` / ``RedrivePolicy``, and turns on S3 -> EventBridge notifications for buckets
  whose ``NotificationConfiguration`` asks for them (their events go to the default bus).

Tests call ``pump()`` synchronously (the ``bus`` fixture); the local stack runs it on a background
thread (``attach``), so an event is delivered within about ``interval`` seconds.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3

from .lambdas import FunctionRunner
from .periodic import InBackground
from .template import Stack

if TYPE_CHECKING:
    from .server import LocalStack

LOG = logging.getLogger("local_stack.bus")
RULE_EVENT_TYPES = ("EventBridgeRule", "CloudWatchEvent")
DEFAULT_ASYNC_RETRIES = 2  # Lambda's default for asynchronous invocations


@dataclass
class Target:
    arn: str
    input: str | None = None
    input_path: str | None = None
    input_transformer: dict[str, Any] | None = None
    dead_letter_arn: str | None = None  # the rule target's DeadLetterConfig

    @property
    def service(self) -> str:
        return self.arn.split(":")[2] if self.arn.startswith("arn:") else ""


@dataclass
class RelayRule:
    name: str
    bus: str
    pattern: dict[str, Any]
    targets: list[Target]
    queue_url: str = ""


@dataclass
class QueueSource:
    """An SQS queue that triggers a function (event source mapping)."""

    queue_arn: str
    function: str
    batch_size: int = 10
    queue_url: str = ""


@dataclass
class Delivery:
    rule: str
    target: str
    event: dict[str, Any]
    error: str | None = None


def _bus_name(value: Any) -> str:
    text = str(value or "default")
    return text.rsplit("event-bus/", 1)[-1] if text.startswith("arn:") else text


def _queue_name(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def _json_path(document: Any, path: str) -> Any:
    """The value at a simple JSONPath (``$``, ``$.detail``, ``$.detail.bucket.name``)."""
    value = document
    for part in [p for p in path.lstrip("$").split(".") if p]:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _transform(target: Target, event: dict[str, Any]) -> Any:
    if target.input is not None:
        return json.loads(target.input)
    if target.input_path:
        return _json_path(event, target.input_path)
    if target.input_transformer:
        paths = target.input_transformer.get("InputPathsMap") or {}
        text = str(target.input_transformer.get("InputTemplate", ""))
        for name, path in paths.items():
            value = _json_path(event, str(path))
            text = text.replace(f"<{name}>", value if isinstance(value, str) else json.dumps(value))
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return event


class BusRelay(InBackground):
    name = "The local bus relay"
    interval = 0.1

    def __init__(self, stack: Stack, runner: FunctionRunner, *, session: boto3.session.Session | None = None) -> None:
        self.stack = stack
        self.runner = runner
        self.session = session or boto3.session.Session(region_name=stack.region)
        self.rules: list[RelayRule] = []
        self.sources: list[QueueSource] = []
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)  # type: ignore[call-overload]
        return self._clients[service]

    @property
    def failures(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.error]

    # -- reading the template ------------------------------------------------------------------
    def template_rules(self) -> list[RelayRule]:
        rules = []
        for logical_id, props in self.stack.resources_of("AWS::Events::Rule"):
            if "EventPattern" not in props or props.get("State", "ENABLED") != "ENABLED":
                continue  # schedules are not event deliveries
            targets = [Target(arn=str(t["Arn"]), input=t.get("Input"), input_path=t.get("InputPath"),
                              input_transformer=t.get("InputTransformer"),
                              dead_letter_arn=(t.get("DeadLetterConfig") or {}).get("Arn"))
                       for t in props.get("Targets") or []]
            rules.append(RelayRule(name=str(props.get("Name") or logical_id), bus=_bus_name(props.get("EventBusName")),
                                   pattern=props["EventPattern"], targets=targets))
        for logical_id, resource in self.stack.resources.items():
            if resource["Type"] not in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
                continue
            if not self.stack.enabled(logical_id):
                continue
            for event_name, spec in ((resource.get("Properties") or {}).get("Events") or {}).items():
                if spec.get("Type") not in RULE_EVENT_TYPES:
                    continue
                props = self.stack.resolve(spec.get("Properties") or {})
                enabled = props.get("State", "ENABLED") == "ENABLED" and props.get("Enabled", True)
                if "Pattern" not in props or not enabled:
                    continue
                target = Target(arn=self.stack.arn(logical_id), input=props.get("Input"),
                                input_path=props.get("InputPath"), input_transformer=props.get("InputTransformer"),
                                dead_letter_arn=(props.get("DeadLetterConfig") or {}).get("Arn"))
                rules.append(RelayRule(name=str(props.get("RuleName") or f"{logical_id}{event_name}")[:64],
                                       bus=_bus_name(props.get("EventBusName")), pattern=props["Pattern"],
                                       targets=[target]))
        return rules

    def template_sources(self) -> list[QueueSource]:
        sources = []
        for _logical_id, props in self.stack.resources_of("AWS::Lambda::EventSourceMapping"):
            arn = str(props.get("EventSourceArn", ""))
            if ":sqs:" in arn and props.get("Enabled", True):
                sources.append(QueueSource(queue_arn=arn, function=str(props["FunctionName"]),
                                           batch_size=int(props.get("BatchSize", 10))))
        for logical_id, spec in self.stack.functions().items():
            for event in spec.events.values():
                if event.get("Type") == "SQS":
                    props = self.stack.resolve(event.get("Properties") or {})
                    sources.append(QueueSource(queue_arn=str(props["Queue"]), function=logical_id,
                                               batch_size=int(props.get("BatchSize", 10))))
        return sources

    # -- setting up the emulator ---------------------------------------------------------------
    def install(self) -> BusRelay:
        """Create the relay queues and rules in the emulator (call once, after ``provision``)."""
        sqs, events = self.client("sqs"), self.client("events")
        self._queue_attributes()
        self._bucket_notifications()
        self.rules = self.template_rules()
        for index, rule in enumerate(self.rules):
            queue = re.sub(r"[^A-Za-z0-9_-]", "-", f"parley-relay-{index}-{rule.name}")[:80]
            rule.queue_url = sqs.create_queue(QueueName=queue)["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=rule.queue_url, AttributeNames=["QueueArn"])
            events.put_rule(Name=rule.name, EventBusName=rule.bus, EventPattern=json.dumps(rule.pattern),
                            State="ENABLED")
            events.put_targets(Rule=rule.name, EventBusName=rule.bus,
                               Targets=[{"Id": "relay", "Arn": queue_arn["Attributes"]["QueueArn"]}])
        self.sources = self.template_sources()
        for source in self.sources:
            source.queue_url = sqs.get_queue_url(QueueName=_queue_name(source.queue_arn))["QueueUrl"]
        return self

    def _queue_attributes(self) -> None:
        sqs = self.client("sqs")
        for logical_id, props in self.stack.resources_of("AWS::SQS::Queue"):
            attributes = {}
            if "VisibilityTimeout" in props:
                attributes["VisibilityTimeout"] = str(props["VisibilityTimeout"])
            if "RedrivePolicy" in props:
                attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
            if attributes:
                url = sqs.get_queue_url(QueueName=self.stack.physical_name(logical_id))["QueueUrl"]
                sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)

    def _bucket_notifications(self) -> None:
        for logical_id, props in self.stack.resources_of("AWS::S3::Bucket"):
            config = (props.get("NotificationConfiguration") or {}).get("EventBridgeConfiguration") or {}
            if config.get("EventBridgeEnabled") in (True, "true", "True"):
                self.client("s3").put_bucket_notification_configuration(
                    Bucket=self.stack.physical_name(logical_id),
                    NotificationConfiguration={"EventBridgeConfiguration": {}})

    # -- delivering ----------------------------------------------------------------------------
    def pump(self, *, max_rounds: int = 20) -> int:
        """Deliver everything waiting (and what those deliveries publish in turn); returns how
        many events and queue messages were handed to targets."""
        total = 0
        with self._lock:
            for _ in range(max_rounds):
                moved = sum(self._drain_rule(rule) for rule in self.rules)
                moved += sum(self._drain_source(source) for source in self.sources)
                total += moved
                if not moved:
                    break
        return total

    def _receive(self, url: str, limit: int = 10) -> list[dict[str, Any]]:
        result = self.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=min(limit, 10),
                                                    WaitTimeSeconds=0, AttributeNames=["All"])
        return list(result.get("Messages", []))

    def _drain_rule(self, rule: RelayRule) -> int:
        messages = self._receive(rule.queue_url)
        for message in messages:
            event = self._normalise(json.loads(message["Body"]))
            for target in rule.targets:
                self._deliver(rule, target, event)
            self.client("sqs").delete_message(QueueUrl=rule.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def _normalise(self, event: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"version": "0", "id": str(uuid.uuid4()), "account": self.stack.account, "time": now,
                "region": self.stack.region, "resources": [], **event}

    def _deliver(self, rule: RelayRule, target: Target, event: dict[str, Any]) -> None:
        payload = _transform(target, event)
        delivery = Delivery(rule=rule.name, target=target.arn, event=event)
        self.deliveries.append(delivery)
        if target.service == "lambda":
            self._invoke_async(target, payload, delivery)
            return
        try:
            if target.service == "states":
                self.client("stepfunctions").start_execution(stateMachineArn=target.arn, input=json.dumps(payload))
            elif target.service == "sqs":
                url = self.client("sqs").get_queue_url(QueueName=_queue_name(target.arn))["QueueUrl"]
                self.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(payload))
            else:
                raise ValueError(f"The local bus cannot deliver to {target.arn}")
        except Exception as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
            LOG.warning("Rule %s could not deliver to %s: %s", rule.name, target.arn, delivery.error)
            self._dead_letter(target.dead_letter_arn, payload)

    def _invoke_async(self, target: Target, payload: Any, delivery: Delivery) -> None:
        """An asynchronous Lambda invocation: retried on error, then dead-lettered."""
        spec = self.runner.spec(target.arn)
        props = (self.stack.resources[spec.logical_id].get("Properties") or {})
        retries = int((props.get("EventInvokeConfig") or {}).get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES))
        for _attempt in range(1 + retries):
            try:
                self.runner.invoke(spec.logical_id, payload)
                delivery.error = None
                return
            except Exception as exc:
                delivery.error = f"{type(exc).__name__}: {exc}"
        LOG.warning("%s failed on an event %d times: %s", spec.logical_id, 1 + retries, delivery.error)
        dlq = self.stack.resolve((props.get("DeadLetterQueue") or {}).get("TargetArn"))
        self._dead_letter(str(dlq) if dlq else target.dead_letter_arn, payload)

    def _dead_letter(self, arn: str | None, payload: Any) -> None:
        if not arn or ":sqs:" not in arn:
            LOG.error("No dead-letter queue; the event is dropped: %s", json.dumps(payload)[:2000])
            return
        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=_queue_name(arn))["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(payload))

    def _drain_source(self, source: QueueSource) -> int:
        messages = self._receive(source.queue_url, source.batch_size)
        if not messages:
            return 0
        records = [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
            "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": source.queue_arn,
            "awsRegion": self.stack.region,
        } for m in messages]
        delivery = Delivery(rule=f"sqs:{_queue_name(source.queue_arn)}", target=source.function,
                            event={"Records": records})
        self.deliveries.append(delivery)
        try:
            result = self.runner.invoke(source.function, {"Records": records})
        except Exception as exc:  # the whole batch comes back after the visibility timeout
            delivery.error = f"{type(exc).__name__}: {exc}"
            LOG.warning("%s failed on a batch from %s: %s", source.function, source.queue_arn, delivery.error)
            return len(messages)
        failed = {f.get("itemIdentifier") for f in (result or {}).get("batchItemFailures", [])} \
            if isinstance(result, dict) else set()
        if failed:
            delivery.error = f"{len(failed)} of {len(messages)} messages failed"
        for message in messages:
            if message["MessageId"] not in failed:
                self.client("sqs").delete_message(QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def round(self) -> int:  # in the background (the local stack)
        return self.pump()


def attach(local: LocalStack) -> None:
    """Local stack extension: deliver bus events to the template's targets in the background."""
    relay = BusRelay(local.stack, local.runner).install().start()
    local.bus_relay = relay  # type: ignore[attr-defined]
    local.on_stop(relay.stop)
