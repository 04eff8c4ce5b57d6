"""The offline engine's analysis answer: a valid ``JudgeAnswer`` built deterministically from the
request (the measurements and the learner's turns), for the local stack and tests.

It finds a few common learner errors with simple patterns, adds the grammar errors the measure step
found (Harper), and quotes them exactly as written, so the quote check keeps them; the scores follow
the measured metrics. It is a stand-in that keeps the
workflow honest end to end, not an assessment.
"""

from __future__ import annotations

import json
import re
from typing import Any

from parley.ai import offline
from parley.ai.types import AiRequest
from parley.analysis.report import JudgeAnswer

# (pattern, replacement, why) - each match is quoted from the learner's text as it was written.
_RULES: tuple[tuple[str, str, str], ...] = (
    (r"\b(?:he|she|it) (?:go|have|do|want|like|live|work)\b", "third-person",
     "With he, she or it, a present-simple verb takes -s (he goes, she has)."),
    (r"\bdid(?:n't| not) (?:went|saw|ate|came|bought|took)\b", "base-form",
     "After did/didn't use the base form of the verb (didn't go)."),
    (r"\bmore (?:better|easier|bigger|faster)\b", "double-comparative",
     "Better, easier, bigger are already comparatives; drop 'more'."),
    (r"\bi [a-z']+", "capital-i",
     "The pronoun I is always written with a capital letter."),
)
_IRREGULAR = {"went": "go", "saw": "see", "ate": "eat", "came": "come", "bought": "buy", "took": "take"}
_THIRD = {"go": "goes", "have": "has", "do": "does"}
_VOCAB = (("very good", "excellent"), ("very big", "huge"), ("very tired", "exhausted"), ("a lot of", "plenty of"),
          ("very happy", "delighted"), ("good", "great"))


def _fix(kind: str, quote: str) -> str:
    if kind == "third-person":
        subject, verb = quote.split(" ", 1)
        return f"{subject} {_THIRD.get(verb.lower(), verb + 's')}"
    if kind == "base-form":
        head, verb = quote.rsplit(" ", 1)
        return f"{head} {_IRREGULAR.get(verb.lower(), verb)}"
    if kind == "double-comparative":
        return quote.split(" ", 1)[1]
    return "I" + quote[1:]


def _clamp(value: float) -> int:
    return max(1, min(10, round(value)))


def build_answer(payload: dict[str, Any]) -> JudgeAnswer:
    learner = [t["text"] for t in payload.get("conversation", []) if t.get("speaker") == "learner"]
    measurements = payload.get("measurements") or {}
    text = measurements.get("text") or {}
    speech = measurements.get("speech")
    corrections: list[dict[str, str]] = []
    for message in learner:
        for pattern, kind, why in _RULES:
            for match in re.finditer(pattern, message, flags=0 if kind == "capital-i" else re.IGNORECASE):
                quote = match.group(0)
                if len(corrections) < 5 and all(c["original"] != quote for c in corrections):
                    corrections.append({"original": quote, "corrected": _fix(kind, quote), "why": why})
    grammar = measurements.get("grammar") or {}
    for issue in grammar.get("evidence") or []:  # the measured (Harper) errors, quoted as the learner wrote
        quote, fix = str(issue.get("quote") or ""), issue.get("suggestion")
        if len(corrections) < 5 and fix is not None and fix != quote and quote.strip() \
                and all(c["original"] != quote for c in corrections):
            corrections.append({"original": quote, "corrected": str(fix) or "(remove it)",
                                "why": str(issue.get("message") or "A grammar error.")[:300]})
    joined = " ".join(learner).lower()
    vocabulary = [{"insteadOf": plain, "suggestion": better, "why": f"'{better}' is more precise than '{plain}'."}
                  for plain, better in _VOCAB if re.search(rf"\b{re.escape(plain)}\b", joined)][:3]

    mlt = float(text.get("meanLengthOfTurn") or 0)
    mtld = float(text.get("mtld") or 0)
    words = max(1, int(text.get("learnerWords") or 1))
    complexity = _clamp(2 + mlt / 4 + mtld / 25)
    per_100 = float(grammar["issuesPer100Words"]) if grammar else 100 * len(corrections) / words
    accuracy = _clamp(9 - per_100 / 2)
    if speech:
        wpm = float(speech.get("wordsPerMinute") or 0)
        fluency = _clamp(3 + min(wpm, 150) / 30 - int(speech.get("longPauses") or 0) / 2)
        confidence = float(speech.get("meanConfidence") or 0)
        pronunciation: dict[str, Any] = {"score": _clamp(confidence * 10),
                                         "reason": f"Mean recognition confidence {confidence:.2f}."}
    else:
        fluency = _clamp(4 + mlt / 4 - float(text.get("fillersPer100Words") or 0) / 5)
        pronunciation = {"score": None, "reason": "Not measured: no recorded speech in this session."}
    average = (complexity + accuracy + fluency) / 3
    cefr = "A1" if average < 3 else "A2" if average < 4.5 else "B1" if average < 6 else "B2" if average < 7.5 \
        else "C1" if average < 9 else "C2"
    answer = {
        "scores": {
            "complexity": {"score": complexity, "reason": f"About {mlt:g} words per turn; MTLD {mtld:g}."},
            "accuracy": {"score": accuracy, "reason": f"{per_100:.1f} errors per 100 words; "
                                                      f"{len(corrections)} corrected below."},
            "fluency": {"score": fluency, "reason": "From speech rate and pauses." if speech
                        else "Written turns only: judged from turn length and fillers."},
            "pronunciation": pronunciation,
        },
        "cefr": cefr,
        "corrections": corrections,
        "betterVocabulary": vocabulary,
        "practiseNext": [
            "Answer with two or three linked sentences (because, so, although).",
            "Review the corrections above and say each corrected sentence aloud.",
            "Use one new word from the vocabulary list in your next session.",
        ],
    }
    return JudgeAnswer.model_validate(answer)


@offline.register("analysis")
def analysis_responder(request: AiRequest) -> str:
    payload = json.loads(request.messages[0].text) if request.messages else {}
    return json.dumps(build_answer(payload).model_dump(mode="json", by_alias=True))
