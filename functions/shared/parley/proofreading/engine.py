"""One exchange with the model: a proofreading (structured, validated, placed) or a chat answer.

The request is built from the prompt's context: the fixed instructions, the prompt's text and its
files as the system prompt (the stable, cacheable prefix) and the writer's text as the user
message. The corrections' schema goes with the request as structured output (with web search on,
the answer is read from the text after the model's last search result instead: a preamble such as
"I'll check..." comes first). A proofreading answer must validate against ``ModelAnswer``; if it does
not, the model is asked once more with the problem stated, and a second failure is AI_OUTPUT_INVALID
(502). An answer cut off at its ``max_tokens`` is never parsed as whole: it is asked for once more
with twice the room (up to ``ANTHROPIC_MAX_TOKENS``), or fails with a message that says so. A refusal
is AI_REFUSED (422) at once, billed once. The exchange is saved only after a complete, valid answer.

Streaming (WebSocket) and non-streaming (REST) share everything but the first call: with an
``on_delta`` callback the first answer is streamed, text delta by text delta.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace

from pydantic import ValidationError

from parley.ai.deadline import Deadline
from parley.ai.errors import ModelRefused, ProviderError
from parley.ai.types import AiAnswer, AiProvider, AiRequest, TokenUsage, Turn
from parley.core.errors import InvalidModelOutput, PayloadTooLarge, UnprocessableEntity
from parley.core.observability import logger
from parley.proofreading import instructions as texts
from parley.proofreading import offline_rules  # noqa: F401 - registers the offline "proofread" responder
from parley.proofreading.conversations import Conversations
from parley.proofreading.library import PromptContext, PromptLibrary
from parley.proofreading.models import (
    ChatResult,
    EngineSettings,
    Mode,
    ModelAnswer,
    ProofreadResult,
    Usage,
    WebSearchStatus,
    answer_schema,
)
from parley.proofreading.offsets import place

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
            elif isinstance(part, str) and part:
                on_delta(part)
    finally:  # the client went away or a delta could not be sent: release the model's stream now
        close = getattr(stream, "close", None)
        if callable(close):
            close()
    if final is None:  # a provider must end its stream with the answer; treat a short one as a failure
        raise ProviderError("The answer stream ended early.", engine=provider.engine)
    return final


def _within(request: AiRequest, remaining: Remaining | None) -> AiRequest:
    """The request with the deadline of this invocation (its time left, less ``SAFETY_SECONDS``)."""
    if remaining is None:
        return request
    return replace(request, deadline=Deadline.after(max(0.0, remaining() - SAFETY_SECONDS)))


def _refused(answer: AiAnswer) -> ModelRefused:
    return ModelRefused("The model declined to answer this text; nothing was saved.",
                        details=[{"engine": answer.engine, "reason": answer.refusal or "refusal"}])


def _parsed(answer: AiAnswer) -> tuple[ModelAnswer | None, str]:
    """The valid corrections, or None and what is wrong (a cut-off answer is never parsed)."""
    if answer.refused:
        raise _refused(answer)
    if answer.truncated:
        return None, f"the answer was cut off at its length limit ({answer.stop_reason})"
    if answer.stop_reason == "malformed":
        return None, "the engine reported malformed output"
    try:
        return parse_answer(answer.final_text), ""
    except (ValueError, ValidationError) as exc:
        return None, _problem(exc)


def web_search_status(settings: EngineSettings, limits: EngineLimits, answer: AiAnswer) -> WebSearchStatus | None:
    """What became of the prompt's web search for this answer (see ``WEB_SEARCH_DESCRIPTION``)."""
    if not settings.web_search:
        return None
    if not limits.web_search_enabled or limits.web_search_max_uses <= 0:
        return "off"
    if answer.web_search == "unavailable":
        return "unavailable on fallback" if answer.fallback_from else "unavailable"
    return "used" if answer.web_search == "used" else "not used"


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
        request = _within(prepared.request, remaining)
        answer = _ask(provider, request, on_delta)
        if answer.refused:
            raise _refused(answer)
        if prepared.mode == "chat":
            return self._save_chat(prepared, answer)
        usage = answer.usage
        parsed, problem = _parsed(answer)
        if parsed is None:
            if remaining is not None and remaining() < MIN_RETRY_SECONDS:
                raise InvalidModelOutput(f"The model's answer was not valid ({problem}) and there is no time left "
                                         "to ask again; nothing was saved. Try again.")
            retry = self._retry(request, answer, problem)
            logger.info("Proofreading answer not valid; asking once more", extra={"problem": problem})
            if on_retry is not None:
                on_retry(problem)
            answer = provider.complete(_within(retry, remaining))
            usage += answer.usage
            parsed, again = _parsed(answer)
            if parsed is None:
                raise InvalidModelOutput(f"The model's answer was not valid twice ({again}); "
                                         "nothing was saved. Try again.")
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
            engine=answer.engine, model=answer.model, usage=total,
            web_search=web_search_status(prepared.context.engine, self.limits, answer))

    def _retry(self, request: AiRequest, answer: AiAnswer, problem: str) -> AiRequest:
        """The second request: twice the room for a cut-off answer, the problem stated for an invalid one."""
        if answer.truncated:
            room = min(self.limits.max_tokens_cap, request.max_tokens * 2)
            if room <= request.max_tokens:
                raise InvalidModelOutput(
                    f"The corrections did not fit in the answer's {request.max_tokens} tokens; nothing was saved. "
                    "Split the text into shorter parts, or raise the prompt's engine.maxTokens.",
                    details=[{"maxTokens": request.max_tokens, "limit": self.limits.max_tokens_cap}])
            return replace(request, max_tokens=room)
        return replace(request, messages=(
            *request.messages, Turn("assistant", answer.final_text or "(empty)"),
            Turn("user", texts.RETRY_INSTRUCTION.format(problem=problem))))

    def _save_chat(self, prepared: Prepared, answer: AiAnswer) -> ChatResult:
        total = usage_out(answer.usage)
        conversation_id, turn = self.conversations.record(
            prepared.owner, prepared.conversation_id, mode="chat", prompt_id=prepared.context.prompt_id,
            text=prepared.text, output=answer.text, corrections=None, engine=answer.engine, model=answer.model,
            usage=total)
        return ChatResult(conversation_id=conversation_id, turn=turn, text=answer.text,
                          prompt_id=prepared.context.prompt_id, skipped_files=prepared.context.skipped_files,
                          engine=answer.engine, model=answer.model, usage=total,
                          web_search=web_search_status(prepared.context.engine, self.limits, answer))

    def proofread(self, owner: str, *, text: str, prompt_id: str | None, conversation_id: str | None,
                  remaining: Remaining | None = None) -> ProofreadResult:
        prepared = self.prepare(owner, mode="proofread", text=text, prompt_id=prompt_id,
                                conversation_id=conversation_id)
        result = self.run(prepared, remaining=remaining)
        assert isinstance(result, ProofreadResult)
        return result
