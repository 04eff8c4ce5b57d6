"""The speech actions: ``tts`` (POST /speech), ``stt`` (POST /transcriptions, waited for) and
``get_transcribe_url`` (GET /transcriptions/stream-url)."""

from __future__ import annotations

from parley.actions.context import Answer, Call, Services
from parley.actions.errors import TranscriptionFailed
from parley.actions.replies import ActionTranscribeUrlReply, ActionTranscript
from parley.actions.requests import ActionSettings, GetTranscribeUrlAction, SttAction, TtsAction
from parley.core.ids import parse_iso, utcnow
from parley.speech.transcription.models import CreateTranscription
from parley.speech.voices import SpeechOut, voice_settings


def tts(services: Services, owner: str, request: TtsAction, _call: Call) -> Answer:
    settings = request.settings or ActionSettings()
    accent, gender = voice_settings(services.tutor, owner, settings.accent, settings.gender)
    return SpeechOut.of(services.speaker().speak(owner, request.text, accent, gender)), 200


def stt(services: Services, owner: str, request: SttAction, call: Call) -> Answer:
    """Runs the transcription workflow and waits for it within the request's time; an unfinished
    one answers 202 with the resource to poll."""
    tutor = services.tutor
    session_id = tutor.resolve_session_id(owner, request.session_id) if request.session_id else None
    transcriptions = services.transcriptions()
    started = transcriptions.create(owner, CreateTranscription(
        audio=request.audio, format=request.format, session_id=session_id, language=request.language))
    result = call.wait(lambda: transcriptions.get(owner, started.transcription_id),
                       lambda t: t.status in ("completed", "failed"))
    if result.status == "failed":
        reason = result.reason
        raise TranscriptionFailed(reason.message if reason else "The transcription failed.",
                                  details=[{"transcriptionId": result.transcription_id,
                                            "reason": reason.code if reason else "Unknown"}])
    done = result.status == "completed"
    return ActionTranscript(success=done, transcript=result.text if done else None, status=result.status,
                          transcription_id=result.transcription_id,
                          poll=None if done else f"/transcriptions/{result.transcription_id}",
                          transcription=result), 200 if done else 202


def get_transcribe_url(services: Services, owner: str, request: GetTranscribeUrlAction, _call: Call) -> Answer:
    out = services.stream_url(owner, request.language, request.sample_rate)
    expires_in = max(0, round((parse_iso(out.expires_at) - utcnow()).total_seconds()))
    return ActionTranscribeUrlReply(url=out.url, expires_in=expires_in, expires_at=out.expires_at,
                                  language_code=out.language_code, media_encoding=out.media_encoding,
                                  sample_rate=out.sample_rate), 200
