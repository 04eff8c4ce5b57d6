"""POST /speech: Polly voices per accent and gender, engines as Polly publishes them, usage, failures."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.stub import Stubber

from local_stack.speech import emulate_speech
from parley import clients
from parley.speech import MAX_TEXT_CHARS, POLLY_VOICES, SEED_VOICES, choose_voice
from tests.conftest import ApiClient, assert_error

# Polly's published voice list (docs.aws.amazon.com/polly/latest/dg/available-voices.html), checked
# by hand: Joanna, Matthew, Amy and Brian have neural and standard; Nicole, Russell and Aditi are
# standard only.
PUBLISHED = {
    "Joanna": ("en-US", {"neural", "standard"}), "Matthew": ("en-US", {"neural", "standard"}),
    "Amy": ("en-GB", {"neural", "standard"}), "Brian": ("en-GB", {"neural", "standard"}),
    "Nicole": ("en-AU", {"standard"}), "Russell": ("en-AU", {"standard"}), "Aditi": ("en-IN", {"standard"}),
}
EXPECTED = {  # accent, gender -> voice, engine (seed 000's table, engines as published)
    ("US", "female"): ("Joanna", "neural"), ("US", "male"): ("Matthew", "neural"),
    ("UK", "female"): ("Amy", "neural"), ("UK", "male"): ("Brian", "neural"),
    ("AU", "female"): ("Nicole", "standard"), ("AU", "male"): ("Russell", "standard"),
    ("IN", "female"): ("Aditi", "standard"), ("IN", "male"): ("Aditi", "standard"),
}


@pytest.fixture
def polly(aws: dict[str, str]) -> Iterator[None]:
    with emulate_speech(speak=False):  # moto's Polly, refusing engines a voice does not support
        yield


def test_the_voice_table_matches_pollys_published_support() -> None:
    assert {v: (p.language_code, set(p.engines)) for v, p in POLLY_VOICES.items()} == PUBLISHED
    assert set(SEED_VOICES) == set(EXPECTED)


@pytest.mark.parametrize(("accent", "gender"), sorted(EXPECTED))
def test_every_accent_and_gender_speaks_with_its_voice_and_engine(api: ApiClient, polly: None, accent: str,
                                                                   gender: str) -> None:
    response = api.post("/speech", {"text": "Nice to meet you.", "accent": accent, "gender": gender})
    assert response.status == 200, response.body
    body = response.json()
    assert (body["voice"], body["engine"]) == EXPECTED[(accent, gender)]
    assert body["languageCode"] == PUBLISHED[body["voice"]][0]
    assert body["contentType"] == "audio/mpeg" and base64.b64decode(body["audio"])
    assert body["characters"] == len("Nice to meet you.")


def test_the_emulated_polly_refuses_an_unsupported_engine(polly: None) -> None:
    with pytest.raises(Exception, match="EngineNotSupported"):
        boto3.client("polly").synthesize_speech(Text="hi", OutputFormat="mp3", VoiceId="Nicole", Engine="neural")
    assert choose_voice("AU", "female").engine == "standard"


def test_defaults_come_from_the_saved_settings(api: ApiClient, polly: None) -> None:
    api.put("/settings", {"accent": "UK", "gender": "male"})
    assert api.post("/speech", {"text": "Cheers."}).json()["voice"] == "Brian"
    assert api.post("/speech", {"text": "Cheers.", "gender": "female"}).json()["voice"] == "Amy"


def test_a_usage_event_is_published_per_call(api: ApiClient, polly: None) -> None:
    with mock.patch("parley.usage.UsagePublisher.publish") as publish:
        api.post("/speech", {"text": "One two three.", "accent": "AU", "gender": "male"})
    (event,), _ = publish.call_args
    assert (event.engine, event.model, event.characters, event.operation) == ("polly", "standard", 14, "tts")
    assert event.owner == f"DEVICE#{api.device_id}"


def test_too_long_text_is_refused_before_polly(api: ApiClient, polly: None) -> None:
    with mock.patch.object(clients.client("polly"), "synthesize_speech") as synthesize:
        error = assert_error(api.post("/speech", {"text": "a" * (MAX_TEXT_CHARS + 1)}), 422, "VALIDATION_ERROR")
    synthesize.assert_not_called()
    (detail,) = error["details"]
    assert (detail["field"], detail["type"]) == ("body.text", "string_too_long")
    assert str(MAX_TEXT_CHARS) in detail["message"]


@pytest.mark.parametrize("body", [{"text": ""}, {"text": "hi", "accent": "FR"}, {"text": "hi", "voice": "Joanna"}])
def test_invalid_requests_are_422(api: ApiClient, polly: None, body: dict[str, Any]) -> None:
    assert_error(api.post("/speech", body), 422, "VALIDATION_ERROR")


def test_polly_failing_after_retries_is_a_503(api: ApiClient, polly: None) -> None:
    calls = {"n": 0}

    def failing(request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        calls["n"] += 1
        raw = mock.Mock(stream=lambda **_k: iter([b""]))
        return AWSResponse(request.url, 500, {"x-amzn-ErrorType": "ServiceFailureException"},
                           raw=raw) if request else None

    client = clients.client("polly")
    client.meta.events.register_first("before-send.polly.SynthesizeSpeech", failing)
    try:
        response = api.post("/speech", {"text": "Hello.", "accent": "US", "gender": "female"})
    finally:
        client.meta.events.unregister("before-send.polly.SynthesizeSpeech", failing)
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert response.headers.get("Retry-After")
    assert calls["n"] == 5  # parley.clients: standard mode, the first try and 4 retries


def test_a_polly_client_error_that_is_ours_is_not_hidden(api: ApiClient, polly: None) -> None:
    client = clients.client("polly")
    with Stubber(client) as stub:
        stub.add_client_error("synthesize_speech", "ThrottlingException", http_status_code=400)
        response = api.post("/speech", {"text": "Hello.", "accent": "US"})
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert json.loads(response.body)["error"]["message"].startswith("Text-to-speech is unavailable")
