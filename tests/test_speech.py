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
from parley.core import clients
from parley.speech.voices import ACCENT_LANGUAGES, MAX_TEXT_CHARS, POLLY_VOICES, choose_voice
from tests.conftest import ApiClient, assert_error

# Polly's published voice list (docs.aws.amazon.com/polly/latest/dg/available-voices.html), checked
# by hand: the voices of our four accents, with their genders and engines.
PUBLISHED = {
    "Joanna": ("en-US", "female", {"neural", "standard"}), "Matthew": ("en-US", "male", {"neural", "standard"}),
    "Amy": ("en-GB", "female", {"neural", "standard"}), "Brian": ("en-GB", "male", {"neural", "standard"}),
    "Olivia": ("en-AU", "female", {"neural"}), "Nicole": ("en-AU", "female", {"standard"}),
    "Russell": ("en-AU", "male", {"standard"}),
    "Kajal": ("en-IN", "female", {"neural"}), "Aditi": ("en-IN", "female", {"standard"}),
}
EXPECTED = {  # accent, gender -> voice, engine, the voice's gender
    ("US", "female"): ("Joanna", "neural", "female"), ("US", "male"): ("Matthew", "neural", "male"),
    ("UK", "female"): ("Amy", "neural", "female"), ("UK", "male"): ("Brian", "neural", "male"),
    ("AU", "female"): ("Olivia", "neural", "female"), ("AU", "male"): ("Russell", "standard", "male"),
    ("IN", "female"): ("Kajal", "neural", "female"), ("IN", "male"): ("Kajal", "neural", "female"),
}


@pytest.fixture
def polly(aws: dict[str, str]) -> Iterator[None]:
    with emulate_speech(speak=False):  # moto's Polly, refusing engines a voice does not support
        yield


def test_the_voice_table_matches_pollys_published_support() -> None:
    assert {v: (p.language_code, p.gender, set(p.engines)) for v, p in POLLY_VOICES.items()} == PUBLISHED
    assert {(a, g) for a in ACCENT_LANGUAGES for g in ("female", "male")} == set(EXPECTED)


@pytest.mark.parametrize(("accent", "gender"), sorted(EXPECTED))
def test_neural_wherever_the_accent_has_a_neural_voice_of_that_gender(accent: str, gender: str) -> None:
    choice = choose_voice(accent, gender)  # type: ignore[arg-type]
    same = [v for v, (lang, g, _) in PUBLISHED.items() if lang == ACCENT_LANGUAGES[accent] and g == gender]
    has_neural = any("neural" in PUBLISHED[v][2] for v in same)
    assert (choice.engine == "neural") == has_neural or not same
    assert choice.language_code == ACCENT_LANGUAGES[accent]  # the accent is always kept


@pytest.mark.parametrize(("accent", "gender"), sorted(EXPECTED))
def test_every_accent_and_gender_speaks_with_its_voice_and_engine(api: ApiClient, polly: None, accent: str,
                                                                   gender: str) -> None:
    response = api.post("/speech", {"text": "Nice to meet you.", "accent": accent, "gender": gender})
    assert response.status == 200, response.body
    body = response.json()
    assert (body["voice"], body["engine"], body["voiceGender"]) == EXPECTED[(accent, gender)]
    assert body["languageCode"] == PUBLISHED[body["voice"]][0]
    assert body["contentType"] == "audio/mpeg" and base64.b64decode(body["audio"])
    assert body["characters"] == len("Nice to meet you.")
    assert (body["voiceNote"] is None) == (body["voiceGender"] == gender)


def test_an_accent_without_a_voice_of_that_gender_says_so(api: ApiClient, polly: None) -> None:
    body = api.post("/speech", {"text": "Namaste.", "accent": "IN", "gender": "male"}).json()
    assert (body["voice"], body["voiceGender"], body["languageCode"]) == ("Kajal", "female", "en-IN")
    assert body["voiceNote"] == ("Polly has no English (Indian) male voice; Kajal (female) spoke in the same accent "
                                 "instead.")


def test_the_emulated_polly_refuses_an_unsupported_engine(polly: None) -> None:
    with pytest.raises(Exception, match="EngineNotSupported"):
        boto3.client("polly").synthesize_speech(Text="hi", OutputFormat="mp3", VoiceId="Nicole", Engine="neural")
    assert choose_voice("AU", "female").engine == "neural"  # Olivia, not the seed's standard-only Nicole


def test_defaults_come_from_the_saved_settings(api: ApiClient, polly: None) -> None:
    api.put("/settings", {"accent": "UK", "gender": "male"})
    assert api.post("/speech", {"text": "Cheers."}).json()["voice"] == "Brian"
    assert api.post("/speech", {"text": "Cheers.", "gender": "female"}).json()["voice"] == "Amy"


def test_a_usage_event_is_published_per_call(api: ApiClient, polly: None) -> None:
    with mock.patch("parley.usage.publisher.UsagePublisher.publish") as publish:
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
    assert calls["n"] == 5  # parley.core.clients: standard mode, the first try and 4 retries


def test_a_polly_client_error_that_is_ours_is_not_hidden(api: ApiClient, polly: None) -> None:
    client = clients.client("polly")
    with Stubber(client) as stub:
        stub.add_client_error("synthesize_speech", "ThrottlingException", http_status_code=400)
        response = api.post("/speech", {"text": "Hello.", "accent": "US"})
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert json.loads(response.body)["error"]["message"].startswith("Text-to-speech is unavailable")
