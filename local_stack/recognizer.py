"""Offline speech recognition for the emulated Transcribe: pocketsphinx and the en-US model in its wheel.

One ``Recogniser`` per process (``recogniser()``) keeps small pools of pocketsphinx decoders: the
first one loads the acoustic model, the 27 MB language model and the dictionary (about 4.5 s on a
cold machine, well under a second once the files are in the page cache); later jobs and streams
reuse them:

    stream = recogniser().stream()
    for chunk in pcm_16k_chunks:
        for result in stream.feed(chunk):   # partial results while speech goes on, a final at each pause
            ...
    results = stream.finish()

Speech is cut into utterances at pauses (pocketsphinx's voice-activity endpointer, a 0.3 s window),
as Transcribe segments its results. Each utterance is decoded with the full search and the best
path; its words carry times (10 ms frames) and the decoder's posterior probability as confidence.
Transcribe writes cased, punctuated text; pocketsphinx knows neither, so the text is given a
capital at the start of each utterance, "I" and its contractions, and a full stop at its end.

Decoder settings: pocketsphinx's defaults (wider beams were tried: no fewer errors, 2.5x the CPU).
Measured on the local Polly's speech of nine everyday sentences, two takes each: word error rate
0.23 for the US female voice, 0.35 for the US male voice; recognition takes about a third of the
audio's duration in CPU time (one core), plus the live pass for streams' partial results.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

SAMPLE_RATE = 16_000
FRAMES_PER_SECOND = 100  # pocketsphinx's frame rate
DECODER_OPTIONS: dict[str, Any] = {"loglevel": "FATAL"}  # pocketsphinx's own search settings
MAX_DECODERS = 2  # the machines have two cores; a third stream waits for one
ENDPOINTER_WINDOW_S = 0.3
MAX_UTTERANCE_S = 30.0  # a longer stretch without a pause is cut, as Transcribe's segments are
PARTIAL_EVERY_S = 0.2  # at most one partial result per 200 ms of audio


class RecogniserBusy(Exception):
    """Every decoder is in use and none came free in time."""


@dataclass(frozen=True)
class Word:
    """A recognised word, as the emulated services report it: its times are seconds into the stream
    (or the file). The emulator keeps its own type, apart from Parley's parser of Transcribe's output:
    the code under test must not shape what it is tested against."""

    text: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Result:
    """One utterance's words so far (``partial``) or for good."""

    result_id: str
    words: tuple[Word, ...]
    start: float
    end: float
    partial: bool

    @property
    def transcript(self) -> str:
        return transcript_text(self.words, final=not self.partial)


_ALTERNATIVE = re.compile(r"\(\d+\)$")


def spoken_words(segments: Any, offset: float, *, first_in_utterance: bool = True) -> list[Word]:
    """pocketsphinx segments -> words: fillers dropped, alternative pronunciations' "(2)" removed,
    "i" capitalised, and the utterance's first word capitalised."""
    words: list[Word] = []
    for segment in segments:
        token = str(segment.word)
        if not token or token[0] in "<[+":  # <s>, </s>, <sil>, [NOISE], ++FILLER++
            continue
        text = _ALTERNATIVE.sub("", token)
        if text == "i" or text.startswith("i'"):
            text = "I" + text[1:]
        if not words and first_in_utterance:
            text = text[:1].upper() + text[1:]
        start = offset + segment.start_frame / FRAMES_PER_SECOND
        end = offset + (segment.end_frame + 1) / FRAMES_PER_SECOND
        confidence = min(1.0, max(0.0, float(segment.prob)))
        words.append(Word(text, round(start, 3), round(end, 3), round(confidence, 3)))
    return words


def transcript_text(words: tuple[Word, ...] | list[Word], *, final: bool) -> str:
    text = " ".join(w.text for w in words)
    return f"{text}." if text and final else text


_LOADING = threading.Lock()


def _new_decoder() -> Any:
    from pocketsphinx import Decoder

    # One model load at a time: pocketsphinx's loader sets process-wide state (its log and config
    # globals), and the stack's warm-up thread and a first stream may both make a decoder at once.
    with _LOADING:
        decoder = Decoder(samprate=SAMPLE_RATE, **DECODER_OPTIONS)
    # A fresh decoder decodes its first utterance differently from every later one (its feature
    # normalisation is set up by the first): one utterance of silence now, so all are alike.
    decoder.start_utt()
    decoder.process_raw(bytes(SAMPLE_RATE), full_utt=True)
    decoder.end_utt()
    return decoder


class _Pool:
    """Up to ``size`` decoders, made when first needed and reused."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self._free: queue.LifoQueue[Any] = queue.LifoQueue()
        self._created = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def decoder(self, timeout: float | None) -> Iterator[Any]:
        try:
            found = self._free.get_nowait()
        except queue.Empty:
            with self._lock:
                create = self._created < self.size
                if create:
                    self._created += 1
            if create:
                try:
                    found = _new_decoder()
                except BaseException:
                    with self._lock:
                        self._created -= 1
                    raise
            else:
                try:
                    found = self._free.get(timeout=timeout)
                except queue.Empty as exc:
                    raise RecogniserBusy(f"All {self.size} {self.name} decoders are busy.") from exc
        try:
            yield found
        finally:
            self._free.put(found)


class Recogniser:
    """The process's decoders: ``final`` ones decode whole utterances (batch jobs and streams' final
    results, each borrowed for one utterance), ``live`` ones follow a stream for its partial results
    (one per stream, for as long as it runs). Each pool holds at most ``MAX_DECODERS`` (about 90 MB
    each), made on first use."""

    def __init__(self, max_decoders: int = MAX_DECODERS) -> None:
        self.final = _Pool("speech", max_decoders)
        self.live = _Pool("streaming", max_decoders)
        self._cmn: str | None = None
        self._lock = threading.Lock()

    def _initial_cmn(self, decoder: Any) -> str:
        with self._lock:
            if self._cmn is None:
                self._cmn = str(decoder.get_cmn())
            return self._cmn

    def decode(self, pcm: bytes, offset: float) -> list[Word]:
        """One whole utterance's words (times from ``offset``), from the model's own cepstral mean, so
        the same audio always gives the same words, whatever was decoded before."""
        with self.final.decoder(timeout=None) as decoder:
            decoder.set_cmn(self._initial_cmn(decoder))
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            return spoken_words(decoder.seg(), offset)

    def warm_up(self) -> None:
        """Load the model now (e.g. in a background thread when the local stack starts)."""
        with self.final.decoder(timeout=None) as decoder:
            self._initial_cmn(decoder)

    def stream(self, *, partials: bool = True, timeout: float | None = 60.0) -> Stream:
        return Stream(self, partials=partials, timeout=timeout)

    def transcribe(self, pcm: bytes) -> list[Result]:
        """Every utterance of a recording (16 kHz mono PCM), final results only."""
        with self.stream(partials=False) as stream:
            results = stream.feed(pcm)
            results += stream.finish()
        return [r for r in results if r.words]


@dataclass
class _Utterance:
    result_id: str
    start: float
    frames: int = 0
    since_partial: int = 0
    last_partial: str = ""
    audio: list[bytes] = field(default_factory=list)


class Stream:
    """One audio stream: feed 16 kHz PCM in any chunk sizes, get ``Result`` objects back."""

    def __init__(self, owner: Recogniser, *, partials: bool, timeout: float | None) -> None:
        from pocketsphinx import Endpointer

        self._owner = owner
        self._hold = owner.live.decoder(timeout) if partials else contextlib.nullcontext(None)
        self._decoder: Any = self._hold.__enter__()
        self._endpointer = Endpointer(window=ENDPOINTER_WINDOW_S, sample_rate=SAMPLE_RATE)
        self._frame_bytes = int(self._endpointer.frame_bytes)
        self._frame_seconds = float(self._endpointer.frame_length)
        self._pending = b""
        self._partials = partials
        self._utterance: _Utterance | None = None
        self._received = 0  # samples fed so far
        self._closed = False

    @property
    def seconds_received(self) -> float:
        return self._received / SAMPLE_RATE

    def feed(self, pcm: bytes) -> list[Result]:
        self._received += len(pcm) // 2
        data = self._pending + pcm
        whole = len(data) // self._frame_bytes * self._frame_bytes
        self._pending = data[whole:]
        results: list[Result] = []
        for start in range(0, whole, self._frame_bytes):
            speech = self._endpointer.process(data[start:start + self._frame_bytes])
            results += self._step(speech)
        return results

    def finish(self) -> list[Result]:
        """The end of the audio: the utterance in progress becomes final."""
        results: list[Result] = []
        # The endpointer's last (short) frame: padded with silence, as an empty one is refused.
        speech = self._endpointer.end_stream(self._pending.ljust(self._frame_bytes, b"\0"))
        self._pending = b""
        results += self._step(speech, ending=True)
        if self._utterance is not None:
            results.append(self._end_utterance())
        return results

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._utterance is not None and self._partials:
                with contextlib.suppress(RuntimeError):
                    self._decoder.end_utt()
            self._utterance = None
            self._hold.__exit__(None, None, None)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------------
    def _step(self, speech: bytes | None, *, ending: bool = False) -> list[Result]:
        results: list[Result] = []
        if speech is not None:
            if self._utterance is None:
                if self._partials:
                    self._decoder.start_utt()
                self._utterance = _Utterance(result_id=str(uuid.uuid4()),
                                             start=float(self._endpointer.speech_start))
            if self._partials:
                self._decoder.process_raw(speech, full_utt=False)
            self._utterance.audio.append(speech)
            self._utterance.frames += 1
            self._utterance.since_partial += 1
            too_long = self._utterance.frames * self._frame_seconds >= MAX_UTTERANCE_S
            if too_long:
                results.append(self._end_utterance())
            elif self._partials and self._utterance.since_partial * self._frame_seconds >= PARTIAL_EVERY_S:
                partial = self._partial()
                if partial is not None:
                    results.append(partial)
        if self._utterance is not None and not self._endpointer.in_speech and not ending:
            results.append(self._end_utterance())
        return results

    def _partial(self) -> Result | None:
        utterance = self._utterance
        assert utterance is not None
        utterance.since_partial = 0
        hypothesis = self._decoder.hyp()
        text = hypothesis.hypstr if hypothesis is not None else ""
        if not text or text == utterance.last_partial:
            return None
        utterance.last_partial = text
        words = spoken_words(self._decoder.seg(), utterance.start)
        if not words:
            return None
        return Result(utterance.result_id, tuple(words), words[0].start, words[-1].end, partial=True)

    def _end_utterance(self) -> Result:
        """The utterance's final result: its audio decoded again as one whole utterance - markedly
        more accurate than the live pass that gave the partial results - from the model's own
        cepstral mean, so the same audio always gives the same words, whatever came before."""
        utterance = self._utterance
        assert utterance is not None
        self._utterance = None
        if self._partials:
            self._decoder.end_utt()
        words = self._owner.decode(b"".join(utterance.audio), utterance.start)
        end = utterance.start + utterance.frames * self._frame_seconds
        return Result(utterance.result_id, tuple(words), words[0].start if words else utterance.start,
                      words[-1].end if words else end, partial=False)


_RECOGNISER: Recogniser | None = None
_RECOGNISER_LOCK = threading.Lock()


def recogniser() -> Recogniser:
    """The process's recogniser: its model is loaded once, on first use."""
    global _RECOGNISER
    with _RECOGNISER_LOCK:
        if _RECOGNISER is None:
            _RECOGNISER = Recogniser()
        return _RECOGNISER
