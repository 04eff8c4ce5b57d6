"""POST /speech - Polly text-to-speech in the learner's accent and gender (seed 000's ``tts``)."""

from __future__ import annotations

import os

from parley.core import clients
from parley.core.api import make_resolver, owner_of, rest_handler
from parley.core.config import SpeechEnv
from parley.data.store import Store
from parley.speech.voices import SpeechOut, SpeechRequest, speaker_from, voice_settings
from parley.tutor.service import Tutor

ENV = SpeechEnv.load(os.environ)
app = make_resolver(cors_allow_origin=ENV.cors_allow_origin, max_body_bytes=ENV.max_body_bytes)


@app.post("/speech", summary="Speak a text with the tutor's Polly voice (MP3, base64 in JSON)", tags=["Speech"])
def speak(body: SpeechRequest) -> SpeechOut:
    owner = owner_of(app)
    store = Store(clients.table(ENV.table_name))
    accent, gender = voice_settings(Tutor(store, retention_days=ENV.data_retention_days), owner,
                                    body.accent, body.gender)
    return SpeechOut.of(speaker_from(ENV, store).speak(owner, body.text, accent, gender))


handler = rest_handler(app)
