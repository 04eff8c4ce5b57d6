"""The tutor's reply in the learner's own language (settings ``showTranslation`` and ``nativeLanguage``).

One model call per reply, after the reply (it never delays the reply or its first audio), metered
like every model call (reserved first, one usage event, operation ``translation``). A translation
that cannot be made - the offline engine (it does not translate, and will not invent one), the quota
reached, the engine failing - leaves the reply untranslated and says why; it never fails the turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from parley.ai.caching import estimate_tokens
from parley.ai.errors import ProviderError
from parley.ai.metering import MeteredProvider
from parley.ai.types import AiProvider, AiRequest, Turn
from parley.core.errors import ParleyError
from parley.core.models import ApiModel
from parley.core.observability import logger
from parley.usage.publisher import UsagePublisher
from parley.usage.quota import QuotaGuard

MAX_TRANSLATION_CHARS = 4000
# Names for the prompt; any other BCP-47 tag is named by its tag, which the models understand.
LANGUAGE_NAMES = {
    "ko": "Korean", "ja": "Japanese", "zh": "Chinese", "zh-Hans": "Simplified Chinese",
    "zh-Hant": "Traditional Chinese", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian",
    "pt": "Portuguese", "pt-BR": "Brazilian Portuguese", "ru": "Russian", "ar": "Arabic", "hi": "Hindi",
    "vi": "Vietnamese", "th": "Thai", "id": "Indonesian", "tr": "Turkish", "pl": "Polish", "nl": "Dutch",
    "uk": "Ukrainian", "fa": "Persian", "bn": "Bengali", "ms": "Malay", "tl": "Tagalog",
}


class TranslationOut(ApiModel):
    """The reply's translation, when the learner's ``showTranslation`` setting is on."""

    language: str = Field(description="The learner's nativeLanguage (BCP-47), the language translated into.")
    available: bool = Field(description="False when there is no translation (see reason).")
    text: str | None = Field(None, description="The reply in that language; also saved on the reply message.")
    reason: str | None = Field(None, description="Why there is no translation, when there is none.")


def language_name(tag: str) -> str:
    return LANGUAGE_NAMES.get(tag) or LANGUAGE_NAMES.get(tag.split("-", 1)[0]) or tag


def system_prompt(tag: str) -> str:
    return (f"Translate the English text the user sends into {language_name(tag)} (BCP-47 {tag}) for a language "
            "learner whose native language it is. Keep the meaning, tone and any question exactly; do not "
            "answer, explain, add quotes or notes. Reply with the translation only.")


@dataclass
class Translator:
    provider: AiProvider
    publisher: UsagePublisher
    quota: QuotaGuard | None

    def translate(self, owner: str, text: str, language: str) -> TranslationOut:
        if language.split("-", 1)[0] == "en":
            return TranslationOut(language=language, available=False,
                                  reason="The learner's native language is English: nothing to translate.")
        if self.provider.engine == "offline":
            return TranslationOut(language=language, available=False,
                                  reason="The offline engine does not translate; a deployed engine does.")
        metered = MeteredProvider(self.provider, owner=owner, product="tutor", operation="translation",
                                  publisher=self.publisher, quota=self.quota)
        request = AiRequest(system=(system_prompt(language),), messages=(Turn("user", text),), purpose="translation",
                            max_tokens=min(2048, 3 * estimate_tokens(text) + 64), temperature=0.0)
        try:
            answer = metered.complete(request)
        except (ProviderError, ParleyError) as exc:  # over quota, engine down: the reply stands untranslated
            logger.warning("Reply not translated", extra={"code": exc.code})
            return TranslationOut(language=language, available=False,
                                  reason=f"The translation could not be made ({exc.code}); the reply is saved "
                                         "without it.")
        translated = answer.text.strip()
        if answer.refused or answer.truncated or not translated:
            return TranslationOut(language=language, available=False,
                                  reason="The engine gave no complete translation; the reply is saved without it.")
        return TranslationOut(language=language, available=True, text=translated[:MAX_TRANSLATION_CHARS])


def translator_from(provider: AiProvider, publisher: UsagePublisher, quota: QuotaGuard | None) -> Translator:
    return Translator(provider, publisher, quota)


def unavailable(language: str, reason: str) -> TranslationOut:
    return TranslationOut(language=language, available=False, reason=reason)


def saved(language: str, text: str | None) -> TranslationOut:
    """A replayed reply's translation: the one saved with it, if any (a replay makes no model call)."""
    if text:
        return TranslationOut(language=language, available=True, text=text)
    return unavailable(language, "The reply was saved without a translation (translation was off or could not "
                                 "be made then); a replay makes no model call.")


__all__: list[Any] = ["TranslationOut", "Translator", "language_name", "saved", "system_prompt", "unavailable"]
