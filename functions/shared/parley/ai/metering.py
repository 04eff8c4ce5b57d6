"""Quota before, one usage event after: the one way chat, analysis and proofreading call a model.

``MeteredProvider`` wraps any ``AiProvider`` for one owner and one operation:

- ``quota.check(owner)`` runs BEFORE the model call, so an owner over quota gets 429 and the model
  is never called (for ``stream`` the check runs when ``stream()`` is called, before iteration);
- after the answer, exactly one ``UsageEvent`` is published naming the engine and model that really
  answered (the fallback's, when it answered), with input, output and cache tokens and web searches;
- a failed publish is logged and swallowed: the learner still gets the answer they paid for.
  (``UsagePublisher`` owns retries and parking of events it could not deliver.)

A stream that fails mid-way publishes nothing: the engine reported no usage for it.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..observability import logger
from ..quota import QuotaGuard
from ..usage import Product, UsageEvent, UsagePublisher
from .types import AiAnswer, AiProvider, AiRequest, Engine


class MeteredProvider:
    def __init__(self, provider: AiProvider, *, owner: str, product: Product, operation: str,
                 publisher: UsagePublisher, quota: QuotaGuard | None) -> None:
        self.provider = provider
        self.owner = owner
        self.product: Product = product
        self.operation = operation
        self.publisher = publisher
        self.quota = quota
        self.published: list[UsageEvent] = []  # what this wrapper published (for callers and tests)

    @property
    def engine(self) -> Engine:
        return self.provider.engine

    @property
    def model(self) -> str:
        return self.provider.model

    def _check(self) -> None:
        if self.quota is not None:
            self.quota.check(self.owner)

    def event_for(self, answer: AiAnswer) -> UsageEvent:
        usage = answer.usage
        return UsageEvent(
            owner=self.owner, product=self.product, engine=answer.engine, model=answer.model,
            operation=self.operation, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens, cache_write_tokens=usage.cache_write_tokens,
            web_searches=usage.web_searches,
        )

    def _record(self, answer: AiAnswer) -> None:
        try:
            event = self.event_for(answer)
            self.publisher.publish(event)
        except Exception:  # usage accounting must never fail the user's answer
            logger.exception("Usage event not published", extra={
                "owner": self.owner, "engine": answer.engine, "model": answer.model, "operation": self.operation,
                "input_tokens": answer.usage.input_tokens, "output_tokens": answer.usage.output_tokens})
            return
        self.published.append(event)

    def complete(self, request: AiRequest) -> AiAnswer:
        self._check()
        answer = self.provider.complete(request)
        self._record(answer)
        return answer

    def stream(self, request: AiRequest) -> Iterator[str | AiAnswer]:
        self._check()  # now, not at the first next(): over quota means no stream at all
        return self._metered_stream(request)

    def _metered_stream(self, request: AiRequest) -> Iterator[str | AiAnswer]:
        for item in self.provider.stream(request):
            if isinstance(item, AiAnswer):
                self._record(item)
            yield item
