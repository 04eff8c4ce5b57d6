"""Proofreading: offsets on the input (Korean included), validation with one retry, the system
prompt built from the prompt and its files, the REST endpoint, and conversation history."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from parley.ai.errors import ModelRefused, ProviderError
from parley.ai.types import AiAnswer, AiRequest, TokenUsage
from parley.core.errors import InvalidModelOutput, NotFound, PromptBudgetExceeded
from parley.data import keys
from parley.data.store import Store
from parley.proofreading import instructions as texts
from parley.proofreading.conversations import Conversations
from parley.proofreading.engine import EngineLimits, Proofreader, parse_answer
from parley.proofreading.library import PromptLibrary, PromptLimits
from parley.proofreading.models import ModelCorrection, NewPromptFile, PromptIn
from parley.proofreading.offline_rules import rule_corrections
from parley.proofreading.offsets import place, utf16_units
from tests.conftest import ApiClient, assert_error

pytestmark = pytest.mark.shared_aws  # its tests keep apart by owner: one emulator for the module


@pytest.fixture
def owner() -> str:
    return f"DEVICE#proofreader-{uuid.uuid4().hex[:12]}"


def js_index(text: str, offset: int) -> int:
    """What JavaScript would call this index: UTF-16 code units before it."""
    return len(text[:offset].encode("utf-16-le")) // 2


def proposal(original: str, replacement: str, offset: int | None = None, category: str = "spelling") -> ModelCorrection:
    return ModelCorrection(original=original, replacement=replacement, offset=offset, category=category,
                           explanation="why")


# -- offsets (unit) -----------------------------------------------------------------------------
def test_korean_corrections_land_on_the_right_characters_with_utf16_offsets_too() -> None:
    text = "오늘은  날씨가 좋다. 나는 할수있다. 😀 teh end"  # Korean rules, then Harper for the English sentence
    placement = place(text, [ModelCorrection.model_validate(c) for c in rule_corrections(text)])
    found = {(c.original, c.replacement, c.category) for c in placement.corrections}
    assert found == {("  ", " ", "spacing"), ("할수있", "할 수 있", "spacing"), ("teh", "the", "spelling")}
    for c in placement.corrections:
        assert text[c.offset:c.offset + c.length] == c.original
        assert c.utf16_offset == js_index(text, c.offset)
        assert c.utf16_length == utf16_units(c.original)
    teh = next(c for c in placement.corrections if c.original == "teh")
    assert teh.utf16_offset == teh.offset + 1  # the emoji before it is two UTF-16 units
    assert placement.corrected_text == "오늘은 날씨가 좋다. 나는 할 수 있다. 😀 the end"
    assert (placement.repaired, placement.dropped) == (0, 0)


def test_a_wrong_offset_is_repaired_onto_its_text() -> None:
    text = "서울경제신문은 어제 실적을 발표햇다."
    byte_offset = len(text[:text.index("발표햇다")].encode())  # a model counting UTF-8 bytes
    placement = place(text, [proposal("발표햇다", "발표했다", byte_offset)])
    (correction,) = placement.corrections
    assert correction.offset == text.index("발표햇다") and correction.length == 4
    assert placement.corrected_text == "서울경제신문은 어제 실적을 발표했다."
    assert (placement.repaired, placement.dropped) == (1, 0)


def test_repeated_text_goes_to_the_nearest_or_next_free_occurrence() -> None:
    text = "A teh B teh C teh"
    placement = place(text, [proposal("teh", "the", 2), proposal("teh", "the"), proposal("teh", "the", 13)])
    assert [c.offset for c in placement.corrections] == [2, 8, 14]
    assert placement.corrected_text == "A the B the C the"
    assert placement.repaired == 2


def test_corrections_not_in_the_text_overlapping_or_no_ops_are_dropped() -> None:
    text = "The quick brown fox"
    placement = place(text, [proposal("quick brown", "quick, brown", 4, "punctuation"),
                             proposal("brown", "browne", 10),  # inside the first
                             proposal("jumps", "jumped"),  # not there
                             proposal("fox", "fox")])  # changes nothing
    assert [c.original for c in placement.corrections] == ["quick brown"]
    assert placement.dropped == 3
    assert placement.corrected_text == "The quick, brown fox"


def test_the_answer_parser_tolerates_a_fence_and_normalises_categories() -> None:
    answer = parse_answer('```json\n{"corrections": [{"original": "a", "replacement": "b", "offset": 0, '
                          '"category": "Fact Check", "explanation": "x"}]}\n```')
    assert answer.corrections[0].category == "fact-check"
    with pytest.raises(ValueError):
        parse_answer("I found no errors.")


# -- the engine (domain, on moto) -----------------------------------------------------------------
class ScriptedProvider:
    """Answers from a script; records every request."""

    engine = "anthropic"
    model = "claude-test"

    def __init__(self, *answers: str | AiAnswer) -> None:
        self.answers = list(answers)
        self.requests: list[AiRequest] = []

    def complete(self, request: AiRequest) -> AiAnswer:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, AiAnswer):
            return answer
        return AiAnswer(text=answer, engine="anthropic", model=self.model,
                        usage=TokenUsage(input_tokens=100, output_tokens=20, cache_read_tokens=80))

    def stream(self, request: AiRequest) -> Iterator[str | AiAnswer]:
        answer = self.complete(request)
        yield answer.text
        yield answer


@pytest.fixture
def store(aws: dict[str, str]) -> Store:
    return Store(boto3.resource("dynamodb").Table(aws["Table"]))


@pytest.fixture
def library(aws: dict[str, str], store: Store) -> PromptLibrary:
    return PromptLibrary(store, boto3.client("s3"), bucket=aws["PromptFilesBucket"],
                         limits=PromptLimits(budget_bytes=2_000, file_max_bytes=1_500, max_files=5,
                                             upload_expiry_seconds=300))


def make_proofreader(library: PromptLibrary, store: Store, provider: Any) -> Proofreader:
    return Proofreader(library, Conversations(store, retention_days=30), EngineLimits(max_chars=1_000),
                       lambda owner, operation, settings: provider)


def put_file(library: PromptLibrary, owner: str, prompt_id: str, name: str, data: bytes) -> None:
    created = library.add_file(owner, prompt_id, NewPromptFile(file_name=name, content_type="text/markdown",
                                                               size_bytes=len(data)))
    item = library.store.get(owner, keys.prompt_file_sk(prompt_id, created.file.file_id))
    library.s3.put_object(Bucket=library.bucket, Key=item["objectKey"], Body=data)


def conversations_of(store: Store, owner: str) -> list[dict]:
    return list(store.query_all(key=Key("PK").eq(owner) & Key("SK").begins_with("CONV")))


def test_the_files_text_joins_the_system_prompt_after_the_instructions(
        library: PromptLibrary, store: Store, owner: str) -> None:
    prompt = library.create(owner, PromptIn(name="Desk", system_prompt="금액 뒤에는 '원'을 쓴다."))
    put_file(library, owner, prompt.prompt_id, "style.md", "# 표기\n- 'e메일'로 쓴다.".encode())
    provider = ScriptedProvider('{"corrections": []}')

    make_proofreader(library, store, provider).proofread(owner, text="이메일을 보냈다.", prompt_id=prompt.prompt_id,
                                                         conversation_id=None)

    (request,) = provider.requests
    assert request.system[0] == texts.PROOFREAD_INSTRUCTIONS  # the fixed part first: one cacheable prefix
    assert request.system[1] == f"{texts.HOUSE_STYLE_HEADING}\n금액 뒤에는 '원'을 쓴다."
    assert '<document name="style.md">\n# 표기\n- \'e메일\'로 쓴다.\n</document>' in request.system[2]
    assert all("이메일을 보냈다" not in block for block in request.system)  # the copy is never in the prefix
    assert request.messages[-1].text == "<copy>이메일을 보냈다.</copy>"
    assert request.json_schema is not None and request.purpose == "proofread"


def test_files_not_uploaded_or_not_utf8_are_left_out_and_reported(
        library: PromptLibrary, store: Store, owner: str) -> None:
    prompt = library.create(owner, PromptIn(name="Desk"))
    library.add_file(owner, prompt.prompt_id, NewPromptFile(file_name="later.md", content_type="text/markdown",
                                                            size_bytes=10))
    put_file(library, owner, prompt.prompt_id, "latin1.txt", "café".encode("latin-1"))
    context = library.context(owner, prompt.prompt_id)
    assert context.documents == [] and sorted(context.skipped_files) == ["later.md", "latin1.txt"]


def test_a_prompt_over_the_budget_when_used_is_refused_clearly(
        library: PromptLibrary, store: Store, owner: str) -> None:
    prompt = library.create(owner, PromptIn(name="Desk", system_prompt="x" * 900))
    put_file(library, owner, prompt.prompt_id, "a.md", b"y" * 1_000)
    smaller = PromptLibrary(store, library.s3, bucket=library.bucket,  # the budget was lowered since
                            limits=PromptLimits(budget_bytes=1_500, file_max_bytes=1_500, max_files=5,
                                                upload_expiry_seconds=300))
    provider = ScriptedProvider()
    with pytest.raises(PromptBudgetExceeded) as refused:
        make_proofreader(smaller, store, provider).proofread(owner, text="hello", prompt_id=prompt.prompt_id,
                                                             conversation_id=None)
    assert refused.value.details == [{"limitBytes": 1_500, "usedBytes": 1_900, "systemPromptBytes": 900,
                                      "fileBytes": 1_000}]
    assert provider.requests == []  # refused before any billable call


def test_an_invalid_answer_is_retried_once_with_the_problem_stated(
        library: PromptLibrary, store: Store, owner: str) -> None:
    valid = json.dumps({"corrections": [{"original": "teh", "replacement": "the", "offset": 0,
                                         "category": "spelling", "explanation": "typo"}]})
    provider = ScriptedProvider('{"corrections": [{"original": "teh"}]}', valid)

    result = make_proofreader(library, store, provider).proofread(owner, text="teh cat", prompt_id=None,
                                                                  conversation_id=None)

    assert result.corrected_text == "the cat"
    assert len(provider.requests) == 2
    assert "could not be used" in provider.requests[1].messages[-1].text
    assert provider.requests[1].messages[-2].role == "assistant"
    assert result.usage.input_tokens == 200 and result.usage.cache_read_tokens == 160  # both calls counted


def test_two_invalid_answers_fail_and_save_nothing(library: PromptLibrary, store: Store, owner: str) -> None:
    provider = ScriptedProvider("no json here", '{"corrections": "none"}')
    with pytest.raises(InvalidModelOutput):
        make_proofreader(library, store, provider).proofread(owner, text="teh cat", prompt_id=None,
                                                             conversation_id=None)
    assert len(provider.requests) == 2
    assert conversations_of(store, owner) == []


TEH = json.dumps({"corrections": [{"original": "teh", "replacement": "the", "offset": 0, "category": "spelling",
                                   "explanation": "typo"}]})


def answer(text: str, **kw: Any) -> AiAnswer:
    return AiAnswer(text=text, engine=kw.pop("engine", "anthropic"), model="claude-test",
                    usage=TokenUsage(input_tokens=100, output_tokens=20), **kw)


def test_a_web_search_answer_is_read_after_the_last_search_and_says_it_searched(
        library: PromptLibrary, store: Store, owner: str) -> None:
    prompt = library.create(owner, PromptIn(name="Facts", engine={"webSearch": True}))
    preamble = "I'll verify {the spelling} and the figures first."
    provider = ScriptedProvider(answer(preamble + TEH, answer_text=TEH, web_search="used"))
    proofreader = Proofreader(library, Conversations(store, retention_days=30),
                              EngineLimits(max_chars=1_000, web_search_enabled=True, web_search_max_uses=3),
                              lambda owner, operation, settings: provider)

    result = proofreader.proofread(owner, text="teh cat", prompt_id=prompt.prompt_id, conversation_id=None)

    assert result.corrected_text == "the cat" and result.web_search == "used"
    assert len(provider.requests) == 1 and provider.requests[0].web_search


def test_without_web_search_on_the_answer_engine_the_result_says_so(
        library: PromptLibrary, store: Store, owner: str) -> None:
    prompt = library.create(owner, PromptIn(name="Facts", engine={"webSearch": True}))
    fell_back = answer(TEH, engine="bedrock", web_search="unavailable", fallback_from="anthropic")
    proofreader = Proofreader(library, Conversations(store, retention_days=30),
                              EngineLimits(max_chars=1_000, web_search_enabled=True, web_search_max_uses=3),
                              lambda owner, operation, settings: ScriptedProvider(fell_back))
    result = proofreader.proofread(owner, text="teh cat", prompt_id=prompt.prompt_id, conversation_id=None)
    assert (result.engine, result.web_search, result.usage.web_searches) == ("bedrock", "unavailable on fallback", 0)
    plain = make_proofreader(library, store, ScriptedProvider(TEH)).proofread(owner, text="teh cat", prompt_id=None,
                                                                              conversation_id=None)
    assert plain.web_search is None  # not asked for


def test_an_answer_cut_at_its_max_tokens_is_retried_with_twice_the_room(
        library: PromptLibrary, store: Store, owner: str) -> None:
    provider = ScriptedProvider(answer('{"corrections": [{"original": "teh", "repl', stop_reason="max_tokens"), TEH)
    proofreader = Proofreader(library, Conversations(store, retention_days=30),
                              EngineLimits(max_chars=1_000, max_tokens_cap=16_384),
                              lambda owner, operation, settings: provider)
    result = proofreader.proofread(owner, text="teh cat", prompt_id=None, conversation_id=None)
    assert result.corrected_text == "the cat"
    assert [r.max_tokens for r in provider.requests] == [4096, 8192]
    assert provider.requests[1].messages == provider.requests[0].messages  # the cut text is not sent back


def test_an_answer_cut_at_the_deployments_cap_fails_clearly_and_saves_nothing(
        library: PromptLibrary, store: Store, owner: str) -> None:
    provider = ScriptedProvider(answer(TEH, stop_reason="max_tokens"))  # parseable, but cut: not taken as whole
    proofreader = Proofreader(library, Conversations(store, retention_days=30),
                              EngineLimits(max_chars=1_000, max_tokens_cap=4096),
                              lambda owner, operation, settings: provider)
    with pytest.raises(InvalidModelOutput, match="did not fit in the answer's 4096 tokens") as caught:
        proofreader.proofread(owner, text="teh cat", prompt_id=None, conversation_id=None)
    assert caught.value.status == 502 and "Split the text" in caught.value.message
    assert len(provider.requests) == 1 and conversations_of(store, owner) == []


def test_a_refusal_is_one_call_and_a_clear_error(library: PromptLibrary, store: Store, owner: str) -> None:
    provider = ScriptedProvider(answer("", stop_reason="refusal", refusal="general_harms"), TEH)
    with pytest.raises(ModelRefused) as caught:
        make_proofreader(library, store, provider).proofread(owner, text="teh cat", prompt_id=None,
                                                             conversation_id=None)
    assert (caught.value.status, caught.value.code) == (422, "AI_REFUSED")
    assert len(provider.requests) == 1 and conversations_of(store, owner) == []


def test_a_failing_engine_saves_no_conversation(library: PromptLibrary, store: Store, owner: str) -> None:
    class Down(ScriptedProvider):
        def complete(self, request: AiRequest) -> AiAnswer:
            raise ProviderError("overloaded", engine="anthropic")

    with pytest.raises(ProviderError):
        make_proofreader(library, store, Down()).proofread(owner, text="teh", prompt_id=None, conversation_id=None)
    assert conversations_of(store, owner) == []


def test_an_unknown_conversation_is_refused_before_the_model_is_called(
        library: PromptLibrary, store: Store, owner: str) -> None:
    provider = ScriptedProvider()
    with pytest.raises(NotFound):
        make_proofreader(library, store, provider).proofread(owner, text="x", prompt_id=None,
                                                             conversation_id="01JAAAAAAAAAAAAAAAAAAAAAAA")
    assert provider.requests == []


# -- POST /proofread and the conversations API (offline engine) ------------------------------------
def proofread(api: ApiClient, text: str, **extra: Any) -> dict:
    response = api.post("/proofread", {"text": text, **extra})
    assert response.status == 200, response.body
    return response.json()


def test_proofread_korean_and_english_with_the_offline_engine(api: ApiClient) -> None:
    text = "나는 할수있다.  정말 정말 좋은것같다. I recieve teh report , thanks."
    result = proofread(api, text)
    for c in result["corrections"]:
        assert text[c["offset"]:c["offset"] + c["length"]] == c["original"]
    assert {c["category"] for c in result["corrections"]} == {"spacing", "grammar", "spelling", "punctuation"}
    assert result["correctedText"] == "나는 할 수 있다. 정말 좋은것 같다. I receive the report, thanks."
    harper = [c for c in result["corrections"] if c["offset"] >= text.index("I recieve")]
    assert [c["original"] for c in harper] == ["recieve", "teh", " ,"]  # Harper's, on the English sentence
    assert "comma" in harper[2]["explanation"]
    assert (result["engine"], result["model"], result["turn"]) == ("offline", "parley-offline-1", 1)
    assert result["usage"]["inputTokens"] > 0 and result["promptId"] is None


def test_proofread_with_a_prompt_reports_files_not_uploaded_yet(api: ApiClient) -> None:
    prompt = api.post("/prompts", {"name": "Desk", "systemPrompt": "House style."}).json()
    api.post(f"/prompts/{prompt['promptId']}/files", {"fileName": "style.md", "contentType": "text/markdown",
                                                       "sizeBytes": 10})
    result = proofread(api, "teh end", promptId=prompt["promptId"])
    assert result["promptId"] == prompt["promptId"] and result["skippedFiles"] == ["style.md"]


def test_proofread_refuses_text_over_the_limit_and_other_owners_prompts(api: ApiClient) -> None:
    (too_long,) = assert_error(api.post("/proofread", {"text": "가" * 10_001}), 422, "VALIDATION_ERROR")["details"]
    assert (too_long["field"], too_long["type"]) == ("body.text", "string_too_long")
    assert "10000" in too_long["message"]
    assert_error(api.post("/proofread", {"text": " \n "}), 422, "UNPROCESSABLE")
    prompt = api.post("/prompts", {"name": "Desk"}).json()
    other = api.as_device("another-device-0002")
    assert_error(other.post("/proofread", {"text": "x", "promptId": prompt["promptId"]}), 404, "NOT_FOUND")


def test_proofreading_publishes_one_usage_event_per_call(api: ApiClient, aws: dict[str, str]) -> None:
    sqs, events = boto3.client("sqs"), boto3.client("events")
    queue = sqs.create_queue(QueueName="usage-spy")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="spy", EventBusName=aws["EventBus"], EventPattern=json.dumps({"source": ["parley"]}))
    events.put_targets(Rule="spy", EventBusName=aws["EventBus"], Targets=[{"Id": "q", "Arn": arn}])

    proofread(api, "teh")

    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    (detail,) = [json.loads(m["Body"])["detail"] for m in messages]
    assert (detail["product"], detail["operation"], detail["engine"]) == ("proofreading", "proofread", "offline")
    assert detail["owner"] == f"DEVICE#{api.device_id}"


def test_over_quota_no_model_call_and_nothing_saved(api: ApiClient, aws: dict[str, str]) -> None:
    table = boto3.resource("dynamodb").Table(aws["Table"])
    owner = f"DEVICE#{api.device_id}"
    from parley.core.ids import utcnow
    from parley.usage.quota import month_of

    table.put_item(Item={"PK": owner, "SK": keys.QUOTA_SK, "monthlyTokens": 10})
    table.put_item(Item={"PK": owner, "SK": keys.usage_month_sk(month_of(utcnow())), "totalTokens": 10})
    assert_error(api.post("/proofread", {"text": "teh"}), 429, "QUOTA_EXCEEDED")
    assert api.get("/conversations").json()["items"] == []


def test_conversations_newest_first_paginated_filtered_by_engine(api: ApiClient) -> None:
    first = proofread(api, "first teh")
    again = proofread(api, "second teh", conversationId=first["conversationId"])
    assert (again["conversationId"], again["turn"]) == (first["conversationId"], 2)
    newest = proofread(api, "third teh")

    page1 = api.get("/conversations", query="limit=1").json()
    page2 = api.get("/conversations", query=f"limit=1&cursor={page1['nextCursor']}").json()
    assert [c["conversationId"] for c in page1["items"] + page2["items"]] == [
        newest["conversationId"], first["conversationId"]]
    assert page1["items"][0] | {"createdAt": None, "updatedAt": None} == {
        "conversationId": newest["conversationId"], "title": "third teh", "mode": "proofread", "engine": "offline",
        "model": "parley-offline-1", "promptId": None, "turnCount": 1, "createdAt": None, "updatedAt": None}
    assert len(api.get("/conversations", query="engine=offline").json()["items"]) == 2
    assert api.get("/conversations", query="engine=bedrock").json()["items"] == []
    assert_error(api.get("/conversations", query="engine=gpt"), 422, "VALIDATION_ERROR")


def test_a_conversation_with_its_exchanges_then_deleted(api: ApiClient) -> None:
    first = proofread(api, "teh one")
    proofread(api, "two  spaces", conversationId=first["conversationId"])
    detail = api.get(f"/conversations/{first['conversationId']}").json()
    assert detail["turnCount"] == 2
    assert [(e["turn"], e["input"], e["output"]) for e in detail["exchanges"]] == [
        (1, "teh one", "the one"), (2, "two  spaces", "two spaces")]
    assert detail["exchanges"][0]["corrections"][0]["original"] == "teh"

    other = api.as_device("another-device-0003")
    assert_error(other.get(f"/conversations/{first['conversationId']}"), 404, "NOT_FOUND")
    assert_error(other.delete(f"/conversations/{first['conversationId']}"), 404, "NOT_FOUND")
    assert_error(other.post("/proofread", {"text": "x", "conversationId": first["conversationId"]}), 404, "NOT_FOUND")

    assert api.delete(f"/conversations/{first['conversationId']}").status == 204
    assert_error(api.get(f"/conversations/{first['conversationId']}"), 404, "NOT_FOUND")
    assert api.get("/conversations").json()["items"] == []
