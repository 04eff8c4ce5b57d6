"""The offline engine: deterministic answers, no network, labelled ``offline`` in every answer.

The local stack uses it unless real credentials are configured, and tests use it wherever the
model's wording does not matter. Features that need a structured answer (analysis, proofreading)
register a responder for their ``purpose`` that builds a valid answer from the request itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from .types import AiAnswer, AiRequest, Engine, TokenUsage

Responder = Callable[[AiRequest], str]
_RESPONDERS: dict[str, Responder] = {}
MODEL = "parley-offline-1"


def register(purpose: str) -> Callable[[Responder], Responder]:
    def decorate(fn: Responder) -> Responder:
        _RESPONDERS[purpose] = fn
        return fn

    return decorate


def estimate_tokens(text: str) -> int:
    """About four characters a token, the usual rule of thumb for English."""
    return max(1, (len(text) + 3) // 4)


@register("chat")
def _chat(request: AiRequest) -> str:
    last = request.messages[-1].text if request.messages else ""
    words = re.findall(r"[A-Za-z']+", last)
    topic = max(words, key=len) if words else "that"
    return f"That's interesting! Can you tell me more about {topic.lower()}?"


class OfflineProvider:
    engine: Engine = "offline"

    def __init__(self, model: str = MODEL) -> None:
        self.model = model

    def complete(self, request: AiRequest) -> AiAnswer:
        responder = _RESPONDERS.get(request.purpose, _RESPONDERS["chat"])
        text = responder(request)
        prompt = "".join(request.system) + "".join(t.text for t in request.messages)
        usage = TokenUsage(input_tokens=estimate_tokens(prompt), output_tokens=estimate_tokens(text))
        return AiAnswer(text=text, engine="offline", model=self.model, usage=usage)

    def stream(self, request: AiRequest) -> Iterator[str | AiAnswer]:
        answer = self.complete(request)
        yield from re.findall(r"\S+\s*", answer.text)
        yield answer
