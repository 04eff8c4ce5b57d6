"""`make run` end to end through seed 000's action envelope alone: one scripted client session, every
call a POST /chat with an ``action``, as the seed's web, iOS and Android clients make them."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from local_stack import audio, voices
from tests.speech_samples import SENTENCES, word_error_rate
from tests.test_local_stack import call, local_url

__all__ = ["local_url"]  # the module-scoped local stack fixture, reused here

LEARNER = ["I go to the market yesterday with my sister.",
           "We bought a lot of apples and the weather was very good.",
           "Um, it was, like, more better than last week because the sun was shining."]


def act(url: str, action: str, expect: int = 200, **fields: Any) -> Any:
    status, _, body = call(url, "POST", "/chat", {"action": action, "deviceId": "ignored-by-parley", **fields})
    assert status == expect, (action, status, body)
    return body


def test_a_seed_client_session_through_the_envelope_alone(local_url: str) -> None:
    session_id = str(uuid.uuid4())  # the seed's clients make their own session id
    # the seed's own spellings are taken; answers use Parley's one spelling (docs/api/tutor.md)
    settings = {"accent": "uk", "gender": "male", "speed": "normal", "level": "Intermediate", "topic": "Daily"}

    saved = act(local_url, "save_settings", settings=settings)
    assert saved["success"] is True and saved["settings"]["accent"] == "UK"
    assert (saved["settings"]["level"], saved["settings"]["topic"]) == ("intermediate", "daily")
    assert act(local_url, "get_settings")["isDefault"] is False

    started = act(local_url, "start_session", 201, sessionId=session_id, settings=settings, tutorName="Gwen")
    assert started["sessionId"] == session_id and started["startedAt"]

    messages: list[dict[str, str]] = []
    for turn, text in enumerate(LEARNER, start=1):
        messages.append({"role": "user", "content": text})
        reply = act(local_url, "chat", messages=messages, settings=settings)
        assert reply["role"] == "assistant" and reply["message"] and reply["engine"] == "offline"
        for message in (messages[-1], {"role": "assistant", "content": reply["message"]}):
            act(local_url, "save_message", 201, sessionId=session_id, message={**message, "turnNumber": turn})
        messages.append({"role": "assistant", "content": reply["message"]})

    speech = act(local_url, "tts", text=messages[-1]["content"], settings=settings)
    assert (speech["voice"], speech["engine"]) == ("Brian", "neural") and base64.b64decode(speech["audio"])

    recording = audio.webm_opus(voices.synthesize(SENTENCES[0], voices.VOICES["Joanna"]), voices.ESPEAK_RATE)
    heard = act(local_url, "stt", audio=base64.b64encode(recording).decode(), language="en-US")
    assert heard["success"] is True and word_error_rate(SENTENCES[0], heard["transcript"]) <= 0.35, heard

    url = act(local_url, "get_transcribe_url", language="en-US", sampleRate=16000)
    assert url["url"].startswith("ws://127.0.0.1:") and url["expiresIn"] > 0  # the local streaming emulator

    ended = act(local_url, "end_session", sessionId=session_id, duration=60, turnCount=3, wordCount=40)
    assert ended["success"] is True and ended["endedAt"]

    analysed = act(local_url, "analyze", sessionId=session_id, messages=messages)
    assert analysed["success"] is True and analysed["sessionId"] == session_id
    assert set(analysed["analysis"]["cafp_scores"]) == {"complexity", "accuracy", "fluency", "pronunciation"}
    assert "more better" in [c["original"] for c in analysed["analysis"]["grammar_corrections"]]

    history = act(local_url, "get_sessions", limit=10)
    assert [s["clientSessionId"] for s in history["sessions"]] == [session_id] and history["hasMore"] is False
    assert history["sessions"][0]["status"] == "completed" and history["sessions"][0]["turnCount"] == 3

    detail = act(local_url, "get_session_detail", sessionId=session_id)
    assert [m["content"] for m in detail["messages"]] == [m["content"] for m in messages]
    assert detail["analysis"]["cafpScores"] == analysed["analysis"]["cafp_scores"]
    assert set(detail["analysis"]["vocabulary"]) == {"totalWords", "uniqueWords", "advancedWords", "suggestedWords"}

    deleted = act(local_url, "delete_session", sessionId=session_id)
    assert deleted["success"] is True and deleted["deletedCount"] >= 8  # 6 messages, the analysis, id, session
    assert act(local_url, "get_sessions")["sessions"] == []
    status, _, error = call(local_url, "POST", "/chat", {"action": "get_session_detail", "sessionId": session_id})
    assert status == 404 and error["error"]["code"] == "NOT_FOUND"
