"""The offline engine's proofreader: Harper for English, deterministic rules for Korean.

English (every sentence without Hangul, kana or CJK) is checked by Harper (``parley.ai.grammar``):
spelling, agreement, articles, repeated words, spacing and punctuation, with Harper's first
suggestion as the replacement and its message as the explanation. Korean text never goes to Harper;
its sentences get these rules (each a correction with the exact offset a model is asked for):

- doubled spaces -> one space (spacing)
- a word repeated ("정말 정말") -> once (grammar)
- a space before . , ! ? -> removed (punctuation)
- the dependent noun 수 after a verb's ㄹ form ("할수있다" -> "할 수 있다") and 같다 after 것
  ("것같다" -> "것 같다") (spacing)

Without harper-py (a function deployed without the Harper layer) the English sentences get the
same generic rules, so the engine still answers. The answer is placed on the text by
``proofreading.offsets`` like any model's: every offset is verified there.
"""

from __future__ import annotations

import json
import re

from parley.ai import grammar, offline
from parley.ai.types import AiRequest
from parley.core.observability import logger

_COPY = re.compile(r"<copy>(.*)</copy>", re.DOTALL)
_DOUBLE_SPACE = re.compile(r"(?<=\S) {2,}(?=\S)")
_REPEATED = re.compile(r"\b(\w+)(\s+)\1\b", re.IGNORECASE)
_SPACE_BEFORE_PUNCT = re.compile(r"(?<=\w)[ \t]+([.,!?])")
_SU_ITDA = re.compile(r"([가-힣])수( ?)(있|없)")
_GEOT_GATDA = re.compile(r"것같")
_PUNCTUATION = frozenset(".,!?;:")

Correction = dict[str, object]


def _has_rieul_final(syllable: str) -> bool:
    code = ord(syllable) - 0xAC00
    return 0 <= code < 11172 and code % 28 == 8  # final consonant ㄹ


def _rules(text: str) -> list[Correction]:
    """The generic and Korean rules over the whole text."""
    found: list[Correction] = []

    def add(offset: int, original: str, replacement: str, category: str, explanation: str) -> None:
        found.append({"original": original, "replacement": replacement, "offset": offset,
                      "category": category, "explanation": explanation})

    for m in _DOUBLE_SPACE.finditer(text):
        add(m.start(), m.group(0), " ", "spacing", "Use one space between words.")
    for m in _REPEATED.finditer(text):
        add(m.start(), m.group(0), m.group(1), "grammar", "The word is repeated.")
    for m in _SPACE_BEFORE_PUNCT.finditer(text):
        add(m.start(), m.group(0), m.group(1), "punctuation", "No space before punctuation.")
    for m in _SU_ITDA.finditer(text):
        if _has_rieul_final(m.group(1)):
            add(m.start(), m.group(0), f"{m.group(1)} 수 {m.group(3)}", "spacing",
                "의존 명사 '수'는 앞말과 띄어 쓰고, '있다/없다'와도 띄어 씁니다.")
    for m in _GEOT_GATDA.finditer(text):
        add(m.start(), m.group(0), "것 같", "spacing", "'같다'는 앞의 '것'과 띄어 씁니다.")
    return found


def _harper(text: str) -> list[Correction]:
    found: list[Correction] = []
    for issue in grammar.check(text):
        if issue.replacement is None or issue.replacement == issue.text or not issue.text:
            continue  # advice without a fix is not a correction
        original, replacement = issue.text, issue.replacement
        following = text[issue.end:issue.end + 1]
        if not original.strip() and not replacement and following in _PUNCTUATION:
            # A space to remove before punctuation: shown on " ." rather than on an invisible " ".
            original, replacement = original + following, following
        found.append({"original": original, "replacement": replacement, "offset": issue.start,
                      "category": issue.category, "explanation": issue.message})
    return found


def rule_corrections(text: str) -> list[Correction]:
    """Harper's corrections in English sentences, the rules' elsewhere; overlaps resolved."""
    if grammar.available():
        english = list(grammar.english_runs(text))

        def in_english(offset: int) -> bool:
            return any(start <= offset < end for start, end in english)

        found = [c for c in _rules(text) if not in_english(int(c["offset"]))]  # type: ignore[call-overload]
        found += _harper(text)
    else:
        logger.warning("harper-py is not installed: English gets the generic rules only")
        found = _rules(text)

    found.sort(key=lambda c: (int(c["offset"]), -len(str(c["original"]))))  # type: ignore[call-overload]
    kept: list[Correction] = []
    end = -1
    for correction in found:  # keep the first of overlapping corrections, as a model is asked to
        start = int(correction["offset"])  # type: ignore[call-overload]
        if start >= end:
            kept.append(correction)
            end = start + len(str(correction["original"]))
    return kept


@offline.register("proofread")
def offline_proofread(request: AiRequest) -> str:
    last = request.messages[-1].text if request.messages else ""
    match = _COPY.search(last)
    text = match.group(1) if match else last
    return json.dumps({"corrections": rule_corrections(text)}, ensure_ascii=False)
