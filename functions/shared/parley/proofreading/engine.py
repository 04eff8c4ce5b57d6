"""One exchange with the model: a proofreading (structured, validated, placed) or a chat answer.

The request is built from the prompt's context: the fixed instructions, the prompt's text and its
files as the system prompt (the stable, cacheable prefix) and the writer's text as the user
message. A proofreading answer must validate against ``ModelAnswer``; if it does not, the model
is asked once more with the problem stated, and a second failure is AI_OUTPUT_INVALID (502). The
exchange is saved only after a complete, valid answer.

Streaming (WebSocket) and non-streaming (REST) share everything but the first call: with an
``on_delta`` callback the first answer is streamed, text delta by text delta.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace

from pydantic import ValidationError

from ..ai.types import AiAnswer, AiProvider, AiRequest, ProviderError, TokenUsage, Turn
from ..errors import InvalidModelOutput, PayloadTooLarge, UnprocessableEntity
from ..observability import logger
from ..prompts import proofreading as texts
from . import offline_rules  # noqa: F401 - registers the offline "proofread" responder
from .conversations import Conversations
from .models import ChatResult, EngineSettings, Mode, ModelAnswer, ProofreadResult, Usage, answer_schema
from .offsets import place
from .prompts import PromptContext, PromptLibrary

# (owner, operation, engine settings) -> the provider to use, metered for that owner and operation.
ProviderFor = Callable[[str, str, EngineSettings], AiProvider]
DeltaSink = Callable[[str], None]
RetrySink = Callable[[str], None]
Remaining = Callable[[], float]  # seconds this invocation has left
SAFETY_SECONDS = 2.0  # kept back from the model for saving and answering
MIN_RETRY_SECONDS = 5.0  # a retry with less time than this left is not attempted


@dataclass(frozen=True)
class EngineLimits:
    max_chars: int
    max_tokens_cap: int = 8192
    web_search_enabled: bool = False
    web_search_max_uses: int = 0


@dataclass(frozen=True)
class Prepared:
    owner: str
    mode: Mode
    text: str
    conversation_id: str | None
    context: PromptContext
    request: AiRequest


def parse_answer(text: str) -> ModelAnswer:
    """The model's JSON answer, tolerating a code fence or a sentence around the object."""
    start, end = text.find("{"), text.rfind("}")
    if start == -1 or end < start:
        raise ValueError("the answer contains no JSON object")
    return ModelAnswer.model_validate(json.loads(text[start:end + 1]))


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{exc.error_count()} validation error(s), first at {where or 'the top'}: {first.get('msg')}"
    return str(exc)[:300]


def add_usage(total: TokenUsage, more: TokenUsage) -> TokenUsage:
    return TokenUsage(
        input_tokens=total.input_tokens + more.input_tokens, output_tokens=total.output_tokens + more.output_tokens,
        cache_read_tokens=total.cache_read_tokens + more.cache_read_tokens,
        cache_write_tokens=total.cache_write_tokens + more.cache_write_tokens,
        web_searches=total.web_searches + more.web_searches,
    )


def usage_out(usage: TokenUsage) -> Usage:
    return Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                 cache_read_tokens=usage.cache_read_tokens, cache_write_tokens=usage.cache_write_tokens,
                 web_searches=usage.web_searches)


def _ask(provider: AiProvider, request: AiRequest, on_delta: DeltaSink | None) -> AiAnswer:
    if on_delta is None:
        return provider.complete(request)
    final: AiAnswer | None = None
    stream = provider.stream(request)
    try:
        for part in stream:
            if isinstance(part, AiAnswer):
                final = part
            elif part:
                on_delta(part)
    finally:  # the client went away or a delta could not be sent: release the model's stream now
        close = getattr(stream, "close", None)
        if callable(close):
            close()
    if final is None:  # a provider must end its stream with the answer; treat a short one as a failure
        raise ProviderError("The answer stream ended early.", engine=provider.engine)
    return final


def _within(request: AiRequest, remaining: Remaining | None) -> AiRequest:
    """The request with its timeout capped by the time this invocation has left."""
    if remaining is None:
        return request
    left = max(1.0, remaining() - SAFETY_SECONDS)
    cap = min(request.timeout_seconds, left) if request.timeout_seconds else left
    return replace(request, timeout_seconds=cap)


class Proofreader:
    def __init__(self, prompts: PromptLibrary, conversations: Conversations, limits: EngineLimits,
                 provider_for: ProviderFor) -> None:
        self.prompts = prompts
        self.conversations = conversations
        self.limits = limits
        self.provider_for = provider_for

    def check_length(self, text: str) -> None:
        """The deployment's MaxProofreadChars (also checked before a WebSocket request is queued)."""
        if len(text) > self.limits.max_chars:
            raise PayloadTooLarge(f"The text is {len(text)} characters; the limit is {self.limits.max_chars}. "
                                  "Split it into parts.", details=[{"field": "text", "limit": self.limits.max_chars}])

    def prepare(self, owner: str, *, mode: Mode, text: str, prompt_id: str | None,
                conversation_id: str | None) -> Prepared:
        """Everything checked before a billable call: size, conversation, prompt, budget."""
        self.check_length(text)
        if not text.strip():
            raise UnprocessableEntity("The text is empty.", details=[{"field": "text"}])
        self.conversations.ensure_exists(owner, conversation_id)
        context = self.prompts.context(owner, prompt_id)
        settings = context.engine
        common = {
            "max_tokens": min(settings.max_tokens, self.limits.max_tokens_cap),
            "temperature": settings.temperature,
            "web_search": settings.web_search and self.limits.web_search_enabled,
            "web_search_max_uses": self.limits.web_search_max_uses if settings.web_search else 0,
        }
        if mode == "proofread":
            request = AiRequest(system=context.blocks(texts.PROOFREAD_INSTRUCTIONS),
                                messages=(Turn("user", texts.wrap_copy(text)),), purpose="proofread",
                                json_schema=answer_schema(), **common)  # type: ignore[arg-type]
        else:
            turns: list[Turn] = []
            for exchange in self.conversations.history(owner, conversation_id):
                turns += [Turn("user", exchange.input), Turn("assistant", exchange.output)]
            request = AiRequest(system=context.blocks(texts.CHAT_INSTRUCTIONS),
                                messages=(*turns, Turn("user", text)), purpose="chat", **common)  # type: ignore[arg-type]
        return Prepared(owner=owner, mode=mode, text=text, conversation_id=conversation_id, context=context,
                        request=request)

    def run(self, prepared: Prepared, on_delta: DeltaSink | None = None, on_retry: RetrySink | None = None,
            remaining: Remaining | None = None) -> ProofreadResult | ChatResult:
        """Ask the model (streaming when ``on_delta`` is given), validate, place, save, answer."""
        provider = self.provider_for(prepared.owner, prepared.mode, prepared.context.engine)
        answer = _ask(provider, _within(prepared.request, remaining), on_delta)
        if prepared.mode == "chat":
            return self._save_chat(prepared, answer)
        usage = answer.usage
        try:
            parsed = parse_answer(answer.text)
        except (ValueError, ValidationError) as exc:
            problem = _problem(exc)
            if remaining is not None and remaining() < MIN_RETRY_SECONDS:
                raise InvalidModelOutput(f"The model's answer was not valid ({problem}) and there is no time left "
                                      "to ask again; nothing was saved. Try again.") from exc
            logger.info("Proofreading answer not valid; asking once more", extra={"problem": problem})
            if on_retry is not None:
                on_retry(problem)
            retry = replace(prepared.request, messages=(
                *prepared.request.messages, Turn("assistant", answer.text or "(empty)"),
                Turn("user", texts.RETRY_INSTRUCTION.format(problem=problem))))
            answer = provider.complete(_within(retry, remaining))
            usage = add_usage(usage, answer.usage)
            try:
                parsed = parse_answer(answer.text)
            except (ValueError, ValidationError) as again:
                raise InvalidModelOutput(f"The model's answer was not valid twice ({_problem(again)}); "
                                      "nothing was saved. Try again.") from again
        placement = place(prepared.text, parsed.corrections)
        total = usage_out(usage)
        conversation_id, turn = self.conversations.record(
            prepared.owner, prepared.conversation_id, mode="proofread", prompt_id=prepared.context.prompt_id,
            text=prepared.text, output=placement.corrected_text, corrections=placement.corrections,
            engine=answer.engine, model=answer.model, usage=total)
        return ProofreadResult(
            conversation_id=conversation_id, turn=turn, corrections=placement.corrections,
            corrected_text=placement.corrected_text, repaired=placement.repaired, dropped=placement.dropped,
            prompt_id=prepared.context.prompt_id, skipped_files=prepared.context.skipped_files,
            engine=answer.engine, model=answer.model, usage=total)

    def _save_chat(self, prepared: Prepared, answer: AiAnswer) -> ChatResult:
        total = usage_out(answer.usage)
        conversation_id, turn = self.conversations.record(
            prepared.owner, prepared.conversation_id, mode="chat", prompt_id=prepared.context.prompt_id,
            text=prepared.text, output=answer.text, corrections=None, engine=answer.engine, model=answer.model,
            usage=total)
        return ChatResult(conversation_id=conversation_id, turn=turn, text=answer.text,
                          prompt_id=prepared.context.prompt_id, skipped_files=prepared.context.skipped_files,
                          engine=answer.engine, model=answer.model, usage=total)

    def proofread(self, owner: str, *, text: str, prompt_id: str | None, conversation_id: str | None,
                  remaining: Remaining | None = None) -> ProofreadResult:
        prepared = self.prepare(owner, mode="proofread", text=text, prompt_id=prompt_id,
                                conversation_id=conversation_id)
        result = self.run(prepared, remaining=remaining)
        assert isinstance(result, ProofreadResult)
        return result
