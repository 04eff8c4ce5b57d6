"""Polly's voices in the local stack: espeak-ng, loaded from the ``espeakng-loader`` wheel through ctypes.

The wheel ships ``libespeak-ng`` and its data; no ``espeak-ng`` program and no Debian package is
involved. The library is driven as its API documents: ``espeak_Initialize`` with
``AUDIO_OUTPUT_SYNCHRONOUS`` (the synthesis runs in the calling thread and hands every block of
22,050 Hz 16-bit mono samples to a callback), ``espeak_SetVoiceByName``, ``espeak_SetParameter``
(rate) and ``espeak_Synth``; see ``Espeak`` for why each synthesis loads it afresh.

Each Polly voice Parley uses gets an espeak-ng voice of its own (language x variant), so every
accent and gender sounds different, as it does on Polly:

    Polly voice  accent/gender        espeak-ng voice
    Joanna       US female            en-us+f2
    Matthew      US male              en-us+edward
    Amy          UK female            en-gb-x-rp+f2        (Received Pronunciation)
    Brian        UK male              en+edward            (espeak's British English)
    Olivia       AU female            en-gb-x-gbclan+f5    (Lancaster)
    Russell      AU male              en-gb-x-gbclan+edward
    Kajal        IN female (and male) en-gb-x-gbcwmd+f2    (West Midlands)
    (Nicole and Aditi, the same accents' standard voices: en-gb-x-gbclan+f4, en-gb-x-gbcwmd+f3)

espeak-ng has no Australian or Indian English: those accents get British regional voices. Other
Polly voices are spoken by their language's closest espeak voice.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass

ESPEAK_RATE = 22_050  # espeak-ng's output rate
WORDS_PER_MINUTE = 145  # a little slower than espeak's 175 default: closer to Polly's pace

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_SSML = 0x10
_ESPEAK_RATE = 1  # espeak_PARAMETER espeakRATE


@dataclass(frozen=True)
class EspeakVoice:
    language: str
    variant: str

    @property
    def name(self) -> str:
        return f"{self.language}+{self.variant}"


VOICES: dict[str, EspeakVoice] = {
    "Joanna": EspeakVoice("en-us", "f2"), "Matthew": EspeakVoice("en-us", "edward"),
    "Amy": EspeakVoice("en-gb-x-rp", "f2"), "Brian": EspeakVoice("en", "edward"),
    "Olivia": EspeakVoice("en-gb-x-gbclan", "f5"), "Russell": EspeakVoice("en-gb-x-gbclan", "edward"),
    "Kajal": EspeakVoice("en-gb-x-gbcwmd", "f2"),
    # Polly's standard-only voices of the same accents, which Parley no longer picks (distinct all the same).
    "Nicole": EspeakVoice("en-gb-x-gbclan", "f4"), "Aditi": EspeakVoice("en-gb-x-gbcwmd", "f3"),
}
_LANGUAGES = {"en-US": "en-us", "en-GB": "en-gb", "en-AU": "en-gb-x-gbclan", "en-IN": "en-gb-x-gbcwmd",
              "en-GB-WLS": "en-gb-x-gbcwmd", "en-NZ": "en-gb", "en-ZA": "en-gb", "en-IE": "en-gb"}


def espeak_voice(voice_id: str, language_code: str | None = None) -> EspeakVoice:
    """The espeak voice for a Polly voice (Parley's own), else for its language code."""
    if voice_id in VOICES:
        return VOICES[voice_id]
    language = _LANGUAGES.get(language_code or "", (language_code or "en-us").lower())
    return EspeakVoice(language, "f3")


class SpeechEngineUnavailable(Exception):
    """libespeak-ng could not be loaded or initialised."""


class Espeak:
    """libespeak-ng, loaded afresh for every synthesis.

    The library keeps state between calls in static variables (the pitch "flutter" position, the
    breath noise generator, the waveform's phase), so the same text comes out slightly different
    each time it is spoken, and recognition of it varies with it. Polly answers the same audio for
    the same request. So every synthesis loads the library anew (``dlopen`` of a private copy, made
    once per process, and ``dlclose`` after), seeds its noise generator, and is deterministic; this
    costs about 10 ms.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._private_copy: str | None = None

    def _library_path(self) -> str:
        if self._private_copy is None:
            try:
                import espeakng_loader
            except ImportError as exc:
                raise SpeechEngineUnavailable("espeakng-loader is not installed (requirements-local.txt)") from exc
            folder = tempfile.mkdtemp(prefix="parley-espeak-")
            atexit.register(shutil.rmtree, folder, True)
            self._private_copy = shutil.copy(espeakng_loader.get_library_path(),
                                             os.path.join(folder, "libespeak-ng.so.1"))
        return self._private_copy

    def _open(self, chunks: list[bytes]) -> tuple[ctypes.CDLL, object]:
        import espeakng_loader

        lib = ctypes.CDLL(self._library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(),
                                     _ESPEAK_INITIALIZE_DONT_EXIT)
        if rate != ESPEAK_RATE:
            self._close(lib)
            raise SpeechEngineUnavailable(f"espeak-ng did not initialise (returned {rate})")
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

        def collect(samples: object, count: int, _events: object) -> int:
            if samples and count > 0:
                chunks.append(ctypes.string_at(samples, count * 2))  # type: ignore[arg-type]
            return 0  # 0: go on synthesising

        callback = callback_type(collect)  # referenced by the caller until the library is closed
        lib.espeak_SetSynthCallback(callback)
        return lib, callback

    @staticmethod
    def _close(lib: ctypes.CDLL) -> None:
        import _ctypes

        lib.espeak_Terminate()
        _ctypes.dlclose(lib._handle)  # type: ignore[attr-defined]

    def synthesize(self, text: str, voice: EspeakVoice, *, ssml: bool = False,
                   words_per_minute: int = WORDS_PER_MINUTE) -> bytes:
        """16-bit mono PCM at ``ESPEAK_RATE`` for ``text`` (the same bytes for the same request)."""
        with self._lock:
            chunks: list[bytes] = []
            lib, callback = self._open(chunks)
            try:
                if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
                    lib.espeak_SetVoiceByName(voice.language.encode())  # no such variant: the plain voice
                lib.espeak_SetParameter(_ESPEAK_RATE, words_per_minute, 0)
                lib.espeak_ng_SetRandSeed(1)
                data = text.encode("utf-8")
                flags = _ESPEAK_CHARS_UTF8 | (_ESPEAK_SSML if ssml else 0)
                status = lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, flags, None, None)
            finally:
                self._close(lib)
                del callback
            if status != 0:
                raise SpeechEngineUnavailable(f"espeak_Synth failed with status {status}")
        return b"".join(chunks)


_ESPEAK = Espeak()


def synthesize(text: str, voice: EspeakVoice, *, ssml: bool = False) -> bytes:
    return _ESPEAK.synthesize(text, voice, ssml=ssml)


_TAG = re.compile(r"<[^>]*>")


def billed_characters(text: str, *, ssml: bool) -> int:
    """Polly bills the characters of the text, not SSML's tags."""
    return len(_TAG.sub("", text)) if ssml else len(text)
