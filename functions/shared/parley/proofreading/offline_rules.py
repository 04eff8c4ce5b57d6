"""The offline engine's proofreader: a few deterministic rules, so the local stack and the tests
get real, checkable corrections without a model.

Rules (each a correction with the exact offset a model is asked for):
- doubled spaces -> one space (spacing)
- a word repeated ("the the", "정말 정말") -> once (grammar)
- common English misspellings ("teh", "recieve", ...) -> the word (spelling)
- a space before . , ! ? -> removed (punctuation); no space after a comma between words -> added
- Korean spacing of the dependent noun 수 after a verb's ㄹ form ("할수있다" -> "할 수 있다") and of
  같다 after 것 ("것같다" -> "것 같다") (spacing)
"""

from __future__ import annotations

import json
import re

from ..ai import offline
from ..ai.types import AiRequest

_COPY = re.compile(r"<copy>(.*)</copy>", re.DOTALL)
TYPOS = {
    "teh": "the", "recieve": "receive", "seperate": "separate", "occured": "occurred", "definately": "definitely",
    "untill": "until", "wich": "which", "accomodate": "accommodate", "goverment": "government",
    "publically": "publicly", "thier": "their", "adress": "address", "beleive": "believe", "tommorow": "tomorrow",
}
_TYPO = re.compile(r"\b(" + "|".join(TYPOS) + r")\b", re.IGNORECASE)
_DOUBLE_SPACE = re.compile(r"(?<=\S) {2,}(?=\S)")
_REPEATED = re.compile(r"\b(\w+)(\s+)\1\b", re.IGNORECASE)
_SPACE_BEFORE_PUNCT = re.compile(r"(?<=\w)[ \t]+([.,!?])")
_NO_SPACE_AFTER_COMMA = re.compile(r"(?<=[A-Za-z]),(?=[A-Za-z])")
_SU_ITDA = re.compile(r"([가-힣])수( ?)(있|없)")
_GEOT_GATDA = re.compile(r"것같")


def _has_rieul_final(syllable: str) -> bool:
    code = ord(syllable) - 0xAC00
    return 0 <= code < 11172 and code % 28 == 8  # final consonant ㄹ


def _match_case(word: str, fixed: str) -> str:
    if word.isupper():
        return fixed.upper()
    return fixed.capitalize() if word[0].isupper() else fixed


def rule_corrections(text: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []

    def add(offset: int, original: str, replacement: str, category: str, explanation: str) -> None:
        found.append({"original": original, "replacement": replacement, "offset": offset,
                      "category": category, "explanation": explanation})

    for m in _DOUBLE_SPACE.finditer(text):
        add(m.start(), m.group(0), " ", "spacing", "Use one space between words.")
    for m in _REPEATED.finditer(text):
        add(m.start(), m.group(0), m.group(1), "grammar", "The word is repeated.")
    for m in _TYPO.finditer(text):
        add(m.start(), m.group(0), _match_case(m.group(0), TYPOS[m.group(0).lower()]), "spelling", "Misspelling.")
    for m in _SPACE_BEFORE_PUNCT.finditer(text):
        add(m.start(), m.group(0), m.group(1), "punctuation", "No space before punctuation.")
    for m in _NO_SPACE_AFTER_COMMA.finditer(text):
        add(m.start(), ",", ", ", "punctuation", "Put a space after a comma.")
    for m in _SU_ITDA.finditer(text):
        if _has_rieul_final(m.group(1)):
            add(m.start(), m.group(0), f"{m.group(1)} 수 {m.group(3)}", "spacing",
                "의존 명사 '수'는 앞말과 띄어 쓰고, '있다/없다'와도 띄어 씁니다.")
    for m in _GEOT_GATDA.finditer(text):
        add(m.start(), m.group(0), "것 같", "spacing", "'같다'는 앞의 '것'과 띄어 씁니다.")

    found.sort(key=lambda c: (int(c["offset"]), -len(str(c["original"]))))  # type: ignore[call-overload]
    kept: list[dict[str, object]] = []
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
