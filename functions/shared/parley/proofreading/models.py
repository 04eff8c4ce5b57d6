"""API models of the proofreading service, and the contract the model's answer must meet."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from parley.core.models import ApiModel

Category = Literal["spelling", "spacing", "grammar", "punctuation", "style", "fact-check"]
CATEGORIES: tuple[str, ...] = ("spelling", "spacing", "grammar", "punctuation", "style", "fact-check")
Mode = Literal["proofread", "chat"]
AiEngineName = Literal["anthropic", "bedrock", "offline"]
WebSearchStatus = Literal["used", "not used", "unavailable on fallback", "unavailable", "off"]
WEB_SEARCH_DESCRIPTION = (
    "Whether this answer could search the web, when the prompt asks for it (null when it does not): "
    "used; not used (the model did not need to); unavailable on fallback (the Anthropic API could not "
    "answer and the fallback engine, Bedrock, has no web search); unavailable (this deployment's engine "
    "has none); off (this deployment turned web search off).")
FileContentType = Literal["text/plain", "text/markdown"]

PromptName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ModelId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:/-]{1,128}$")]
ItemId = Annotated[str, StringConstraints(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")]
FileName = Annotated[str, StringConstraints(
    strip_whitespace=True, pattern=r"^[^/\\\x00-\x1f\"<>]{1,150}\.(txt|md|markdown)$")]
MAX_SYSTEM_PROMPT_CHARS = 50_000
# The longest text one proofreading request may send (REST and WebSocket): the schemas' maxLength,
# so a longer one is a 422 VALIDATION_ERROR naming the field, whichever way it comes.
MAX_PROOFREAD_CHARS = 10_000


class EngineSettings(ApiModel):
    """How the model is asked: which model, how creative, how long, with web search or not."""

    model: ModelId | None = Field(
        None, description="One of the deployment's allowed models; null = the deployment's default.")
    temperature: float = Field(0.2, ge=0, le=1, description="Low keeps corrections consistent.")
    max_tokens: int = Field(4096, ge=256, le=16_384, description="Upper bound on the answer's length.")
    web_search: bool = Field(False, description="Let the model search the web (fact-check), when the "
                                                "deployment enables it; at most WebSearchMaxUses searches.")


class PromptIn(ApiModel):
    name: PromptName
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    system_prompt: Annotated[str, StringConstraints(max_length=MAX_SYSTEM_PROMPT_CHARS)] = Field(
        "", description="House instructions added to the proofreader's own.")
    engine: EngineSettings = Field(default_factory=EngineSettings)


class PromptBudget(ApiModel):
    """UTF-8 bytes of the prompt's text and files against the deployment's PromptBudgetBytes."""

    limit_bytes: int
    system_prompt_bytes: int
    file_bytes: int
    used_bytes: int
    remaining_bytes: int


class Prompt(ApiModel):
    prompt_id: str
    name: str
    description: str
    system_prompt: str
    engine: EngineSettings
    file_count: int
    budget: PromptBudget
    created_at: str
    updated_at: str


class PromptPage(ApiModel):
    items: list[Prompt]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= to get the next page; null on the last.")


class NewPromptFile(ApiModel):
    file_name: FileName = Field(description="Ends in .txt, .md or .markdown.")
    content_type: FileContentType
    size_bytes: int = Field(ge=1, description="The exact size of the upload; the upload URL is signed for it.")


class PromptFile(ApiModel):
    file_id: str
    file_name: str
    content_type: FileContentType
    size_bytes: int
    created_at: str
    uploaded: bool | None = Field(None, description="Whether the object is in the bucket (file lists only).")


class UploadTarget(ApiModel):
    url: str
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str] = Field(description="Send exactly these headers with the PUT; they are signed.")
    expires_at: str


class PromptFileCreated(ApiModel):
    file: PromptFile
    upload: UploadTarget
    budget: PromptBudget


class PromptFileList(ApiModel):
    items: list[PromptFile]
    budget: PromptBudget


# -- proofreading ---------------------------------------------------------------------------------
class ProofreadRequest(ApiModel):
    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_PROOFREAD_CHARS)]
    prompt_id: ItemId | None = Field(None, description="A prompt of yours; null = the built-in instructions only.")
    conversation_id: ItemId | None = Field(None, description="Add this exchange to an existing conversation.")


class Correction(ApiModel):
    """One correction, placed on the input.

    ``offset``/``length`` count Unicode code points (Python ``str`` indices): ``text[offset:offset+length]
    == original``. ``utf16Offset``/``utf16Length`` count UTF-16 code units (JavaScript string
    indices); they differ only after characters outside the BMP, such as emoji.
    """

    offset: int
    length: int
    utf16_offset: int
    utf16_length: int
    original: str
    replacement: str
    category: Category
    explanation: str


class Usage(ApiModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    web_searches: int = 0


class ProofreadResult(ApiModel):
    conversation_id: str
    turn: int
    corrections: list[Correction]
    corrected_text: str = Field(description="The input with every correction applied.")
    repaired: int = Field(description="Corrections whose offset the model got wrong, moved onto their text.")
    dropped: int = Field(description="Corrections discarded: not found in the input, overlapping, or no-ops.")
    prompt_id: str | None
    skipped_files: list[str] = Field(description="Prompt files left out: not uploaded yet, or not UTF-8 text.")
    engine: AiEngineName
    model: str
    usage: Usage
    web_search: WebSearchStatus | None = Field(None, description=WEB_SEARCH_DESCRIPTION)


class ChatResult(ApiModel):
    conversation_id: str
    turn: int
    text: str
    prompt_id: str | None
    skipped_files: list[str]
    engine: AiEngineName
    model: str
    usage: Usage
    web_search: WebSearchStatus | None = Field(None, description=WEB_SEARCH_DESCRIPTION)


# -- conversations --------------------------------------------------------------------------------
class ConversationSummary(ApiModel):
    conversation_id: str
    title: str
    mode: Mode
    engine: AiEngineName
    model: str
    prompt_id: str | None
    turn_count: int
    created_at: str
    updated_at: str


class Exchange(ApiModel):
    turn: int
    mode: Mode
    input: str
    output: str = Field(description="The corrected text (proofread) or the answer (chat).")
    corrections: list[Correction] | None = None
    engine: AiEngineName
    model: str
    usage: Usage
    created_at: str


class ConversationDetail(ConversationSummary):
    exchanges: list[Exchange]


class ConversationPage(ApiModel):
    items: list[ConversationSummary]
    next_cursor: str | None = None


# -- what the model must answer -------------------------------------------------------------------
class ModelCorrection(BaseModel):
    """One correction as the model proposes it; its offset is a hint, verified before use."""

    model_config = ConfigDict(extra="ignore")

    original: str = Field(min_length=1, max_length=2000)
    replacement: str = Field(max_length=2000)
    category: Category
    explanation: str = Field("", max_length=600)
    offset: int | None = Field(None, ge=0)

    @field_validator("category", mode="before")
    @classmethod
    def _normalise_category(cls, value: Any) -> Any:
        if isinstance(value, str):
            lowered = value.strip().lower().replace("_", "-").replace(" ", "-")
            return {"factcheck": "fact-check", "fact": "fact-check", "typo": "spelling"}.get(lowered, lowered)
        return value

    @field_validator("explanation", mode="before")
    @classmethod
    def _shorten(cls, value: Any) -> Any:
        return value[:597] + "..." if isinstance(value, str) and len(value) > 600 else value


class ModelAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    corrections: list[ModelCorrection] = Field(max_length=500)


def answer_schema() -> dict[str, Any]:
    """The JSON schema given to the model (the offset is asked for, though only as a hint)."""
    return {
        "type": "object",
        "required": ["corrections"],
        "properties": {"corrections": {"type": "array", "items": {
            "type": "object",
            "required": ["original", "replacement", "offset", "category", "explanation"],
            "properties": {
                "original": {"type": "string"}, "replacement": {"type": "string"},
                "offset": {"type": "integer", "minimum": 0},
                "category": {"type": "string", "enum": list(CATEGORIES)},
                "explanation": {"type": "string"},
            },
        }}},
    }
