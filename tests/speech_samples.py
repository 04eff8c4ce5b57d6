"""Sentences the speech tests speak (with the local Polly) and recognise, and the word error rate.

The sentences are everyday learner English. The local Polly is deterministic (the same text, the
same audio), and so is the recogniser, so each sentence's error rate is fixed; over a wider set of
nine sentences the local recogniser (pocketsphinx, en-US) mishears about one word in six of the
US female voice's MP3 (docs/local-emulation.md). These are among the ones it hears well.
"""

from __future__ import annotations

import re

SENTENCES = (
    "I went to the market yesterday and bought some apples.",
    "I think learning a new language takes a lot of time and patience.",
    "Can you tell me how to get to the train station please?",
    "We watched a movie last night and it was really funny.",
)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / words in the reference (Levenshtein over words)."""
    ref, hyp = words(reference), words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / max(1, len(ref))
