"""Text-to-speech with Amazon Polly: the voice per accent and gender, and ``Speaker``.

Each accent and gender speaks with a voice of that accent, on the neural engine wherever the accent
has a neural voice of that gender, from Polly's published voice list ("Available voices",
docs.aws.amazon.com/polly/latest/dg/available-voices.html; checked 2026-12):

    voice    language  gender  neural  standard   used for
    Joanna   en-US     female  yes     yes        US female
    Matthew  en-US     male    yes     yes        US male
    Amy      en-GB     female  yes     yes        UK female
    Brian    en-GB     male    yes     yes        UK male
    Olivia   en-AU     female  yes     no         AU female (the seed's Nicole is standard only)
    Nicole   en-AU     female  no      yes        -
    Russell  en-AU     male    no      yes        AU male (Polly has no neural en-AU male voice)
    Kajal    en-IN     female  yes     no         IN female, and IN male: Polly has no en-IN male voice
    Aditi    en-IN     female  no      yes        - (the seed's, standard only)

Where the accent has no voice of the requested gender, the answer says so: ``voiceGender`` is the
gender that really spoke and ``voiceNote`` explains (the accent is kept; a learner practises an
accent, and another accent's male voice would teach the wrong one).

Decisions (documented in docs/api/speech.md):
- The answer is JSON with the MP3 base64-encoded (``audio``), not a binary body: one response shape
  for every endpoint, metadata (voice, engine, characters) beside the audio, and no API-wide
  ``BinaryMediaTypes`` / ``Accept`` negotiation. Tutor answers are one or two sentences, so the 4/3
  size overhead is a few kilobytes.
- Text longer than Polly's limit for one request (3000 billed characters) is refused rather than
  split — 422 ``VALIDATION_ERROR`` on ``body.text``, the schema's own ``maxLength`` — the tutor
  speaks one short answer at a time, and a refusal tells the client exactly what to change.
- Polly's throttling and 5xx are retried by botocore (standard mode, 4 attempts, backoff with
  jitter); what still fails becomes 503 ``SERVICE_UNAVAILABLE`` with ``Retry-After``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from parley.core.errors import BadRequest, ServiceUnavailable, UnprocessableEntity
from parley.core.models import ApiModel
from parley.core.observability import logger
from parley.data.store import Store, error_code
from parley.tutor.models import Accent, Gender
from parley.tutor.service import Tutor
from parley.usage.events import UsageEvent
from parley.usage.publisher import UsagePublisher
from parley.usage.quota import Bound, QuotaGuard, Reservation

Engine = Literal["neural", "standard"]
MAX_TEXT_CHARS = 3000  # Polly SynthesizeSpeech: at most 3000 billed characters per request
OUTPUT_FORMAT = "mp3"
CONTENT_TYPE = "audio/mpeg"


@dataclass(frozen=True)
class PollyVoice:
    """One voice as Polly publishes it."""

    voice_id: str
    language_code: str
    gender: Gender
    engines: frozenset[str]


# Polly's published support for the voices we use (the table in the module docstring).
POLLY_VOICES: dict[str, PollyVoice] = {v.voice_id: v for v in (
    PollyVoice("Joanna", "en-US", "female", frozenset({"neural", "standard"})),
    PollyVoice("Matthew", "en-US", "male", frozenset({"neural", "standard"})),
    PollyVoice("Amy", "en-GB", "female", frozenset({"neural", "standard"})),
    PollyVoice("Brian", "en-GB", "male", frozenset({"neural", "standard"})),
    PollyVoice("Olivia", "en-AU", "female", frozenset({"neural"})),
    PollyVoice("Nicole", "en-AU", "female", frozenset({"standard"})),
    PollyVoice("Russell", "en-AU", "male", frozenset({"standard"})),
    PollyVoice("Kajal", "en-IN", "female", frozenset({"neural"})),
    PollyVoice("Aditi", "en-IN", "female", frozenset({"standard"})),
)}

ACCENT_LANGUAGES: dict[str, str] = {"US": "en-US", "UK": "en-GB", "AU": "en-AU", "IN": "en-IN"}
LANGUAGE_NAMES: dict[str, str] = {"en-US": "English (US)", "en-GB": "English (British)",
                                  "en-AU": "English (Australian)", "en-IN": "English (Indian)"}
# The seed's voices, in order of preference after the engine (the seed's first).
SEED_ORDER: tuple[str, ...] = ("Joanna", "Matthew", "Amy", "Brian", "Nicole", "Russell", "Aditi")

ENGINE_PREFERENCE: tuple[Engine, ...] = ("neural", "standard")


@dataclass(frozen=True)
class VoiceChoice:
    voice_id: str
    engine: Engine
    language_code: str
    gender: Gender  # the voice's own gender
    requested_gender: Gender

    @property
    def note(self) -> str | None:
        """Why the voice is not of the requested gender, when it is not."""
        if self.gender == self.requested_gender:
            return None
        language = LANGUAGE_NAMES.get(self.language_code, self.language_code)
        return (f"Polly has no {language} {self.requested_gender} voice; {self.voice_id} ({self.gender}) spoke "
                "in the same accent instead.")


def _rank(voice: PollyVoice) -> tuple[int, int]:
    best = min(ENGINE_PREFERENCE.index(e) for e in voice.engines)  # type: ignore[arg-type]
    seed = SEED_ORDER.index(voice.voice_id) if voice.voice_id in SEED_ORDER else len(SEED_ORDER)
    return best, seed


def choose_voice(accent: Accent, gender: Gender) -> VoiceChoice:
    """A voice of the accent and gender on the best engine it has (neural where the accent has a neural
    voice of that gender); a voice of the accent's other gender where Polly has none of this one."""
    language = ACCENT_LANGUAGES[accent]
    voices = [v for v in POLLY_VOICES.values() if v.language_code == language]
    pool = [v for v in voices if v.gender == gender] or voices
    voice = min(pool, key=_rank)
    engine = next(e for e in ENGINE_PREFERENCE if e in voice.engines)
    return VoiceChoice(voice.voice_id, engine, voice.language_code, voice.gender, gender)


@dataclass(frozen=True)
class Speech:
    audio: bytes
    voice: VoiceChoice
    characters: int
    content_type: str = CONTENT_TYPE

    @property
    def audio_base64(self) -> str:
        return base64.b64encode(self.audio).decode()


_UNAVAILABLE = frozenset({"ServiceFailureException", "ThrottlingException", "ServiceUnavailable",
                          "InternalFailure", "RequestTimeout"})


class Speaker:
    """Synthesises one text for one owner: a quota reservation first, one Polly call, one usage
    event (which settles the reservation; a failed call releases it)."""

    def __init__(self, polly: Any, publisher: UsagePublisher, quota: QuotaGuard) -> None:
        self.polly = polly
        self.publisher = publisher
        self.quota = quota

    def speak(self, owner: str, text: str, accent: Accent, gender: Gender) -> Speech:
        text = text.strip()
        if not text:
            raise BadRequest("There is no text to speak.")
        if len(text) > MAX_TEXT_CHARS:  # the request schemas refuse it first; the same answer for any caller
            raise TextTooLong("The request is not valid; see details.", details=[{
                "field": "body.text", "type": "string_too_long", "maxLength": MAX_TEXT_CHARS,
                "message": f"String should have at most {MAX_TEXT_CHARS} characters (Polly's limit for one "
                           "request); send it in shorter parts"}])
        voice = choose_voice(accent, gender)
        # Polly bills the characters sent: the reservation is the exact price of this text.
        reservation = self.quota.reserve(owner, Bound(cost_usd=self.publisher.prices.cost(UsageEvent(
            owner=owner, product="tutor", engine="polly", model=voice.engine, operation="tts",
            characters=len(text)))), operation="tts")
        try:
            return self._synthesize(owner, text, voice, reservation)
        except BaseException:
            self.quota.release(reservation)
            raise

    def _synthesize(self, owner: str, text: str, voice: VoiceChoice, reservation: Reservation | None) -> Speech:
        try:
            result = self.polly.synthesize_speech(
                Text=text, TextType="text", OutputFormat=OUTPUT_FORMAT,
                VoiceId=voice.voice_id, Engine=voice.engine, LanguageCode=voice.language_code)
            audio = result["AudioStream"].read()
            content_type = str(result.get("ContentType") or CONTENT_TYPE)
            characters = int(result.get("RequestCharacters", len(text)))
        except ClientError as exc:
            code = error_code(exc)
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in _UNAVAILABLE or status >= 500:
                logger.warning("Polly unavailable after retries", extra={"code": code})
                raise ServiceUnavailable("Text-to-speech is unavailable right now; retry in a moment.",
                                         headers={"Retry-After": "2"}) from exc
            raise
        except BotoCoreError as exc:  # connection errors and timeouts, after botocore's retries
            logger.warning("Polly unreachable after retries", extra={"error": type(exc).__name__})
            raise ServiceUnavailable("Text-to-speech is unavailable right now; retry in a moment.",
                                     headers={"Retry-After": "2"}) from exc
        self.publisher.publish(UsageEvent(owner=owner, product="tutor", engine="polly", model=voice.engine,
                                          operation="tts", characters=characters).settling(reservation))
        return Speech(audio=audio, voice=voice, characters=characters, content_type=content_type)


def voice_settings(tutor: Tutor, owner: str, accent: Accent | None, gender: Gender | None) -> tuple[Accent, Gender]:
    """The accent and gender to speak with: the request's, else the learner's saved settings."""
    if accent is None or gender is None:
        saved = tutor.get_settings(owner)
        accent, gender = accent or saved.accent, gender or saved.gender
    return accent, gender


class TextTooLong(UnprocessableEntity):
    """Longer than Polly speaks in one request: the same 422 the request schema answers."""

    code = "VALIDATION_ERROR"


# -- API models ----------------------------------------------------------------------------------
class SpeechRequest(ApiModel):
    """Speak ``text``. Omitted accent/gender come from the learner's saved settings."""

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS,
                      description=f"At most {MAX_TEXT_CHARS} characters (Polly's limit for one request)")
    accent: Accent | None = None
    gender: Gender | None = None


class SpeechOut(ApiModel):
    audio: str = Field(description="The MP3, base64-encoded")
    content_type: str = Field(CONTENT_TYPE, description="audio/mpeg (Polly's MP3; the local stack's too)")
    voice: str = Field(description="The Polly voice that spoke")
    voice_gender: Gender = Field(description="The gender of that voice; differs from the request's where Polly has "
                                             "no voice of the accent and gender (en-IN has no male voice)")
    voice_note: str | None = Field(None, description="Why the voice differs from what was asked, when it does")
    engine: Engine
    language_code: str
    characters: int = Field(description="Characters Polly billed")

    @classmethod
    def of(cls, speech: Speech) -> SpeechOut:
        return cls(audio=speech.audio_base64, content_type=speech.content_type, voice=speech.voice.voice_id,
                   voice_gender=speech.voice.gender, voice_note=speech.voice.note, engine=speech.voice.engine,
                   language_code=speech.voice.language_code, characters=speech.characters)


def speaker_from(env: Any, store: Store) -> Speaker:
    """Polly speech, metered, configured from a function's environment (``SpeechEnv``, ``ChatEnv``)."""
    from parley.core import clients
    from parley.usage.publisher import publisher_from
    from parley.usage.quota import guard_from

    return Speaker(clients.client("polly"), publisher_from(env), guard_from(env, store))
