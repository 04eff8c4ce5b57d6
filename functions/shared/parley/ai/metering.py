"""Reserve before, one usage event after: the one way chat, analysis and proofreading call a model.

``MeteredProvider`` wraps any ``AiProvider`` for one owner and one operation:

- BEFORE the model call it reserves the call's bound against the owner's monthly quota
  (``QuotaGuard.reserve``, one atomic conditional write): an owner over quota gets 429 and the model
  is never called (for ``stream`` the reservation is taken when ``stream()`` is called, before
  iteration). The bound is ``request_bound``: every byte of the prompt counted as a token (no token
  is shorter than a byte) plus a few per message, plus the answer's ``max_tokens`` (plus an allowance
  per permitted web search), priced at the dearest model that may answer, input at the cache-write
  price. A call can therefore never use more than it reserved (web search results excepted: see
  ``WEB_SEARCH_TOKENS``);
- after the answer, exactly one ``UsageEvent`` is published naming the engine and model that really
  answered (the fallback's, when it answered), with input, output and cache tokens and web searches,
  and the reservation it settles; the recorder swaps the reservation for the real usage;
- a call that fails before using anything releases its reservation at once;
- a stream is metered on EVERY path — the final answer, a consumer that stops early (a WebSocket
  client gone mid-answer: ``close()``), a timeout or a failure after text: without the final
  answer, the event carries the input tokens (the engine's own figure when its stream reported one,
  see ``UsageReport``; else an estimate) and the output so far (estimated from the text that was
  produced); a stream that failed before any text or report used nothing and releases its
  reservation;
- a failed publish is logged and swallowed: the learner still gets the answer they paid for
  (``UsagePublisher`` owns retries and parking; an unsettled reservation is released once overdue).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from parley.ai.anthropic_api import MAX_CONTINUATIONS
from parley.ai.caching import estimate_tokens, system_texts
from parley.ai.types import AiAnswer, AiProvider, AiRequest, TokenUsage, UsageReport, Wrapper
from parley.core.observability import logger
from parley.usage.events import Product, UsageEvent
from parley.usage.pricing import PriceTable
from parley.usage.publisher import UsagePublisher
from parley.usage.quota import Bound, QuotaGuard, Reservation

PROMPT_OVERHEAD_TOKENS = 16  # the engine's own framing of a request
MESSAGE_OVERHEAD_TOKENS = 8  # role markers around each message
# Web search results are read as input tokens; how many cannot be known before the call. Each
# permitted search is reserved at this allowance (a results page is typically a few thousand).
WEB_SEARCH_TOKENS = 10_000


def prompt_bytes(request: AiRequest) -> int:
    return (sum(len(text.encode("utf-8")) for text in system_texts(request))
            + sum(len(turn.text.encode("utf-8")) + MESSAGE_OVERHEAD_TOKENS for turn in request.messages)
            + PROMPT_OVERHEAD_TOKENS)


def models_of(provider: Any) -> list[tuple[str, str]]:
    """(engine, model) of every engine that may answer through ``provider`` (a fallback chain's too)."""
    found: list[tuple[str, str]] = []
    for part in (getattr(provider, "wrapped", None), getattr(provider, "secondary", None)):
        if part is not None and not callable(part):
            found += models_of(part)
    return found or [(str(provider.engine), str(provider.model))]


def request_bound(request: AiRequest, models: list[tuple[str, str]], prices: PriceTable) -> Bound:
    """The most one model call can use: its reservation.

    With web search, an answer the engine pauses (``pause_turn``) is continued up to
    ``MAX_CONTINUATIONS`` times, each continuation sending everything so far again: the bound counts
    every such call at its largest."""
    searches = request.web_search_max_uses if request.web_search else 0
    calls = 1 + (MAX_CONTINUATIONS if searches else 0)
    each_input = prompt_bytes(request) + searches * WEB_SEARCH_TOKENS + (calls - 1) * request.max_tokens
    input_tokens, output_tokens = calls * each_input, calls * request.max_tokens
    cache_write = prices.cache_write_multiplier >= 1  # input priced as a cache write, when that is dearer
    cost = max(prices.cost(UsageEvent(
        owner="USER#bound", product="tutor", engine="bedrock" if engine == "bedrock" else "anthropic",
        model=model, operation="bound", input_tokens=0 if cache_write else input_tokens,
        cache_write_tokens=input_tokens if cache_write else 0, output_tokens=output_tokens,
        web_searches=searches)) if engine != "offline" else 0.0 for engine, model in models)
    return Bound(tokens=input_tokens + output_tokens, cost_usd=cost)


class MeteredProvider(Wrapper):
    def __init__(self, provider: AiProvider, *, owner: str, product: Product, operation: str,
                 publisher: UsagePublisher, quota: QuotaGuard | None) -> None:
        self.wrapped = provider
        self.owner = owner
        self.product: Product = product
        self.operation = operation
        self.publisher = publisher
        self.quota = quota
        self.published: list[UsageEvent] = []  # what this wrapper published (for callers and tests)

    def bound(self, request: AiRequest) -> Bound:
        return request_bound(request, models_of(self.wrapped), self.publisher.prices)

    def _reserve(self, request: AiRequest) -> Reservation | None:
        if self.quota is None:
            return None
        return self.quota.reserve(self.owner, self.bound(request), operation=self.operation)

    def _release(self, reservation: Reservation | None) -> None:
        if self.quota is None or reservation is None:
            return
        try:
            self.quota.release(reservation)
        except Exception:  # it is released once overdue; the caller's error matters more
            logger.exception("Reservation not released", extra={"operation": self.operation})

    def event_for(self, engine: str, model: str, usage: TokenUsage,
                  reservation: Reservation | None = None) -> UsageEvent:
        return UsageEvent(
            owner=self.owner, product=self.product, engine=engine, model=model,  # type: ignore[arg-type]
            operation=self.operation, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens, cache_write_tokens=usage.cache_write_tokens,
            web_searches=usage.web_searches,
        ).settling(reservation)

    def _record(self, engine: str, model: str, usage: TokenUsage, reservation: Reservation | None) -> None:
        try:
            event = self.event_for(engine, model, usage, reservation)
            self.publisher.publish(event)
        except Exception:  # usage accounting must never fail the user's answer
            logger.exception("Usage event not published", extra={
                "engine": engine, "model": model, "operation": self.operation,
                "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens})
            return
        self.published.append(event)

    def complete(self, request: AiRequest) -> AiAnswer:
        reservation = self._reserve(request)
        try:
            answer = self.wrapped.complete(request)
        except BaseException:
            self._release(reservation)
            raise
        self._record(answer.engine, answer.model, answer.usage, reservation)
        return answer

    def stream(self, request: AiRequest) -> MeteredStream:
        reservation = self._reserve(request)  # now, not at the first next(): over quota means no stream at all
        return MeteredStream(self, request, reservation)


class MeteredStream:
    """The provider's stream, passed through (text deltas and the final answer), metered exactly
    once whichever way it ends: exhausted, ``close()``d early, or failed."""

    def __init__(self, meter: MeteredProvider, request: AiRequest, reservation: Reservation | None) -> None:
        self._meter = meter
        self._request = request
        self._reservation = reservation
        self._inner: Iterator[Any] | None = None
        self._text: list[str] = []
        self._report: UsageReport | None = None
        self._settled = False

    def __iter__(self) -> MeteredStream:
        return self

    def __next__(self) -> str | AiAnswer:
        if self._settled:
            raise StopIteration
        try:
            if self._inner is None:
                self._inner = iter(self._meter.wrapped.stream(self._request))
            while True:
                item = next(self._inner)
                if isinstance(item, UsageReport):
                    self._report = item
                    continue
                break
        except StopIteration:
            self._settle(None)
            raise
        except BaseException:
            self._settle(None)
            raise
        if isinstance(item, AiAnswer):
            self._settle(item)
        elif isinstance(item, str):
            self._text.append(item)
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop early (the consumer has gone): release the engine's stream, meter what it used."""
        try:
            close = getattr(self._inner, "close", None)
            if callable(close):
                close()
        finally:
            self._settle(None)

    def _settle(self, answer: AiAnswer | None) -> None:
        if self._settled:
            return
        self._settled = True
        meter = self._meter
        if answer is not None:
            meter._record(answer.engine, answer.model, answer.usage, self._reservation)
            return
        if self._report is None and not self._text:  # nothing reached the engine's output: nothing used
            meter._release(self._reservation)
            return
        report = self._report
        engine, model = (report.engine, report.model) if report else (meter.wrapped.engine, meter.wrapped.model)
        reported = report.usage if report else TokenUsage()
        prompt = "".join(system_texts(self._request)) + "".join(t.text for t in self._request.messages)
        usage = TokenUsage(
            input_tokens=reported.input_tokens if report else estimate_tokens(prompt),
            output_tokens=max(reported.output_tokens, estimate_tokens("".join(self._text)) if self._text else 0),
            cache_read_tokens=reported.cache_read_tokens, cache_write_tokens=reported.cache_write_tokens,
            web_searches=reported.web_searches)
        logger.info("Stream ended before its answer; metered what it used",
                    extra={"operation": meter.operation, "engine": engine, "input_tokens": usage.input_tokens,
                           "output_tokens": usage.output_tokens, "reported": report is not None})
        meter._record(engine, model, usage, self._reservation)
