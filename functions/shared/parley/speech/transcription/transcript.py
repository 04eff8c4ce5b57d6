"""Transcribe's output file: its text, words, timings and confidences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from parley.speech.transcription.errors import TranscriptMalformed


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Transcript:
    text: str
    words: list[Word]
    language: str | None

    @property
    def duration_seconds(self) -> float:
        return max((w.end for w in self.words), default=0.0)


def parse_transcript(document: Any) -> Transcript:
    """Parse Transcribe's batch output (``results.transcripts`` and ``results.items``).

    Items of type ``pronunciation`` become words (the first alternative is Transcribe's best; times
    and confidences are strings in the file); ``punctuation`` items have no times and are attached
    to the previous word's text, so ``words`` joined by spaces reads like ``text``.
    """
    try:
        results = document["results"]
        items = results.get("items", [])
        words: list[Word] = []
        for item in items:
            best = item["alternatives"][0]
            content = str(best["content"])
            if item["type"] == "punctuation":
                if words:
                    last = words[-1]
                    words[-1] = Word(last.text + content, last.start, last.end, last.confidence)
                continue
            if item["type"] != "pronunciation":
                raise TranscriptMalformed(f"Unknown item type {item['type']!r}")
            words.append(Word(content, float(item["start_time"]), float(item["end_time"]),
                              float(best.get("confidence", 0) or 0)))
        text = " ".join(t["transcript"] for t in results.get("transcripts", []) if t.get("transcript")).strip()
        if not text:
            text = " ".join(w.text for w in words)
        language = results.get("language_code")
    except TranscriptMalformed:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise TranscriptMalformed(f"Not a Transcribe output file: {type(exc).__name__}: {exc}") from exc
    return Transcript(text=text, words=words, language=language)
