"""The analysis judge's instructions (the stable, cacheable system prompt) and its user message.

The learner's words only ever go into the user message, as JSON data: instructions stay in the
system prompt, where nothing the learner typed can rewrite them. The answer's JSON schema is not in
the prompt: it goes with the request as structured output (or, on an engine without it, the provider
layer adds it), so it is sent once.
"""

from __future__ import annotations

import json
from typing import Any

VERSION = "2026-12-a"  # part of the analysis fingerprint: a new prompt may re-analyse a session

SYSTEM = """\
You are an experienced English teacher and CEFR examiner. You assess ONE conversation between a \
learner and an AI tutor and answer with ONE JSON object, nothing else: no prose, no code fences.

Score each dimension from 1 (very weak) to 10 (native-like), with a one-line reason that points \
at the evidence:
- complexity: range and sophistication of grammar and vocabulary (clauses, tenses, word choice). \
Use the measured meanLengthOfTurn, mtld (lexical diversity; about 40-60 is typical of proficient \
writers, under 30 is narrow) and typeTokenRatio.
- accuracy: grammar, word forms, prepositions, articles, spelling. Judge from the errors you find.
- fluency: how smoothly ideas are expressed. When speech metrics are present use wordsPerMinute \
(about 120-160 is a comfortable conversational pace), pauses, longPauses and fillersPer100Words; \
when they are absent, judge written flow and say so in the reason.
- pronunciation: ONLY when speech metrics are present, from meanConfidence (the recogniser's \
confidence, a proxy for intelligibility: above 0.9 is very clear, under 0.75 often unclear) and \
leastCertainWords. When "speech" is null, set pronunciation.score to null and the reason to \
"Not measured: no recorded speech in this session."

Also give:
- cefr: your estimate of the learner's level (A1, A2, B1, B2, C1 or C2) in this conversation;
- corrections: up to 10 of the most useful fixes. "original" MUST be the learner's exact words, \
copied character for character from ONE learner turn (a short phrase or sentence, not a \
paraphrase); "corrected" is the fixed version; "why" is one short line. Never quote the tutor. \
If the learner made no errors, give an empty list;
- betterVocabulary: up to 8 more precise or natural words/phrases; "insteadOf" is the learner's \
exact words it improves on (or null), "suggestion" the better choice, "why" one line;
- practiseNext: exactly three concrete things to practise next, most important first.

Assess only the learner's turns; the tutor's turns are context. The measured metrics were computed \
by software from this conversation and are accurate: do not contradict them.

Keep every line short: reasons, quotes, corrections and tips are at most 300 characters each.
"""

RETRY = """\
Your previous answer was not a valid report: {problem}
Answer again with only the corrected JSON object that follows the schema."""

TRUNCATED = """\
Your previous answer was cut off at the length limit before the report was complete. Answer again \
with the whole report as one JSON object, keeping every line well under 300 characters and giving \
fewer corrections and tips if needed."""


def system_prompt() -> str:
    return SYSTEM


def user_message(*, level: str | None, topic: str | None, measurements: dict[str, Any],
                 conversation: list[dict[str, Any]]) -> str:
    """The data to assess, as one JSON document (the offline engine reads it back too)."""
    return json.dumps({
        "task": "Assess the learner in this conversation.",
        "learnerSettings": {"level": level, "topic": topic},
        "measurements": measurements,
        "conversation": conversation,
    }, ensure_ascii=False, separators=(",", ":"))


def retry_message(problem: str) -> str:
    return RETRY.format(problem=problem[:800])
