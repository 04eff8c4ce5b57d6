"""Speech-to-text and text-to-speech are quota-checked and metered at every way in: POST /transcriptions,
POST /transcriptions/upload-url, GET /transcriptions/stream-url, the action API's stt and
get_transcribe_url (and tts / POST /speech); over quota each answers 429 and starts nothing."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key

from local_stack.bus import BusRelay
from parley.core.ids import utcnow
from parley.data import keys
from parley.usage.quota import month_of
from tests.conftest import WEBM, ApiClient, FakeTranscribe, assert_error

MACHINE = "TranscriptionStateMachine"


def owner_of(api: ApiClient) -> str:
    return f"DEVICE#{api.device_id}"


def table(aws: dict[str, str]) -> Any:
    return boto3.resource("dynamodb").Table(aws["Table"])


def month_item(aws: dict[str, str], owner: str) -> dict[str, Any]:
    return table(aws).get_item(Key={"PK": owner, "SK": keys.usage_month_sk(month_of(utcnow()))}).get("Item") or {}


def open_reservations(item: dict[str, Any]) -> list[str]:
    return [name for name in item if name.startswith("reservation#")]


def at_the_cost_limit(aws: dict[str, str], owner: str) -> None:
    """The template's default limit is $5 a month: this owner has used it."""
    table(aws).put_item(Item={"PK": owner, "SK": keys.usage_month_sk(month_of(utcnow())), "type": "USAGE_MONTH",
                              "totalTokens": 0, "estimatedCostUsd": Decimal("5.0"),
                              "committedTokens": 0, "committedCostUnits": 5 * 10**10})



def test_over_quota_every_speech_entry_is_429_and_starts_nothing(api: ApiClient, workflows: Any,
                                                                  aws: dict[str, str]) -> None:
    # Given an owner who has used the month's cost limit
    owner = owner_of(api)
    at_the_cost_limit(aws, owner)
    audio = base64.b64encode(WEBM).decode()
    # When each way into speech-to-text (and speech) is tried
    answers = {
        "POST /transcriptions": api.post("/transcriptions", {"audio": audio}),
        "POST /transcriptions/upload-url": api.post("/transcriptions/upload-url",
                                                    {"format": "webm", "sizeBytes": 1000}),
        "GET /transcriptions/stream-url": api.get("/transcriptions/stream-url"),
        "stt": api.post("/chat", {"action": "stt", "audio": audio}),
        "get_transcribe_url": api.post("/chat", {"action": "get_transcribe_url"}),
        "POST /speech": api.post("/speech", {"text": "Hello."}),
        "tts": api.post("/chat", {"action": "tts", "text": "Hello."}),
    }
    # Then every one is the quota's 429, naming the limit and when it resets
    for entry, response in answers.items():
        error = assert_error(response, 429, "QUOTA_EXCEEDED")
        assert error["details"][0]["limit"] == "monthlyCostUsd", entry
        assert int(response.headers["Retry-After"]) > 0, entry
    # and nothing was stored, started or reserved
    assert boto3.client("s3").list_objects_v2(Bucket=aws["AudioBucket"]).get("KeyCount", 0) == 0
    assert workflows.executions(MACHINE) == []
    items = table(aws).query(KeyConditionExpression=Key("PK").eq(owner))["Items"]
    assert [i["SK"] for i in items] == [keys.usage_month_sk(month_of(utcnow()))]
    assert open_reservations(items[0]) == []


def test_a_transcription_reserves_and_its_usage_event_settles_it(api: ApiClient, transcribe: FakeTranscribe,
                                                                 workflows: Any, bus: BusRelay,
                                                                 aws: dict[str, str]) -> None:
    owner = owner_of(api)
    created = api.post("/transcriptions", {"audio": base64.b64encode(WEBM).decode()})
    assert created.status == 202, created.body
    held = month_item(aws, owner)
    assert len(open_reservations(held)) == 1 and held["committedCostUnits"] > 0  # reserved before starting
    (arn,) = workflows.executions(MACHINE)
    assert workflows.wait(arn).status == "SUCCEEDED"
    bus.pump()  # the workflow's usage event reaches the recorder
    settled = month_item(aws, owner)
    assert open_reservations(settled) == []
    assert settled["audioSeconds"] > 0 and settled["committedCostUnits"] == settled["estimatedCostUsd"] * 10**10 > 0


def test_a_failed_transcription_releases_its_reservation(api: ApiClient, transcribe: FakeTranscribe,
                                                         workflows: Any, aws: dict[str, str]) -> None:
    from local_stack.speech import JobFailure

    transcribe.outcome = JobFailure("The media is corrupt.")
    owner = owner_of(api)
    api.post("/transcriptions", {"audio": base64.b64encode(WEBM).decode()})
    (arn,) = workflows.executions(MACHINE)
    workflows.wait(arn)
    item = month_item(aws, owner)
    assert open_reservations(item) == [] and item["committedCostUnits"] == 0


def test_a_stream_url_is_metered_as_the_seconds_it_grants(api: ApiClient, bus: BusRelay, aws: dict[str, str],
                                                         stack: Any) -> None:
    granted = int(stack.parameters.get("StreamingSecondsPerUrl", 120))
    body = api.get("/transcriptions/stream-url").json()
    assert body["meteredSeconds"] == granted
    bus.pump()
    item = month_item(aws, owner_of(api))
    assert open_reservations(item) == []
    assert item["audioSeconds"] == granted and item["committedCostUnits"] == item["estimatedCostUsd"] * 10**10 > 0
    days = table(aws).query(KeyConditionExpression=Key("PK").eq(owner_of(api))
                            & Key("SK").begins_with("USAGE#DAY#"))["Items"]
    assert [d["engine"] for d in days] == ["transcribe"]


def test_an_upload_url_reserves_what_its_size_can_cost(api: ApiClient, aws: dict[str, str]) -> None:
    small = api.post("/transcriptions/upload-url", {"format": "webm", "sizeBytes": 75_000}).json()
    held = month_item(aws, owner_of(api))
    # 75,000 bytes of Opus at 6 kbit/s is at most 100 s: $0.024 a minute
    assert held["committedCostUnits"] == 400_000_000  # $0.04
    found = table(aws).get_item(Key={"PK": owner_of(api), "SK": keys.transcription_sk(small["transcriptionId"])})
    assert found["Item"]["reservationId"].startswith(month_of(utcnow()) + ".")


# -- the upload policy, reused after its transcription finished ------------------------------------
def test_an_upload_arriving_for_a_finished_transcription_is_deleted_at_once(
        api: ApiClient, transcribe: FakeTranscribe, workflows: Any, aws: dict[str, str]) -> None:
    from tests.test_transcription_workflow import leftovers, object_created

    upload = api.post("/transcriptions/upload-url", {"format": "webm", "sizeBytes": 1000}).json()
    key = upload["fields"]["key"]
    s3 = boto3.client("s3")
    s3.put_object(Bucket=aws["AudioBucket"], Key=key, Body=WEBM)
    first = workflows.wait(workflows.start(MACHINE, object_created(aws["AudioBucket"], key, len(WEBM))))
    assert first.status == "SUCCEEDED" and leftovers(aws["AudioBucket"])["objects"] == []
    # When the same policy is used again before it expires (S3 accepts it: a POST policy is not one-time)
    s3.put_object(Bucket=aws["AudioBucket"], Key=key, Body=WEBM)
    second = workflows.wait(workflows.start(MACHINE, object_created(aws["AudioBucket"], key, len(WEBM))))
    # Then nothing is transcribed again, and the orphan is deleted at once (not after a day by the lifecycle)
    assert second.status == "SUCCEEDED" and workflows.states_entered(second.arn) == ["Prepare", "AlreadyStarted"]
    assert leftovers(aws["AudioBucket"])["objects"] == []
    assert len(set(transcribe.jobs)) == 1
