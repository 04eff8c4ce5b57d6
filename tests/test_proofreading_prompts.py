"""Proofreading prompts and their reference files through the API (seed 003's prompt CRUD)."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from tests.conftest import ApiClient, assert_error

BUDGET = 100_000  # the template's PromptBudgetBytes default
FILE_MAX = 50_000  # PromptFileMaxBytes
MAX_FILES = 10  # PromptMaxFiles


pytestmark = pytest.mark.shared_aws  # its tests keep apart by owner: one emulator for the module


def objects_of(aws: dict[str, str], api: ApiClient) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=aws["PromptFilesBucket"],
                                                Prefix=f"prompt-files/DEVICE/{api.device_id}/")
    return [o["Key"] for o in listed.get("Contents", [])]


def create(api: ApiClient, **body) -> dict:
    response = api.post("/prompts", {"name": "Desk", **body})
    assert response.status == 201, response.body
    return response.json()


def add_file(api: ApiClient, prompt_id: str, name: str = "style.md", size: int = 100,
             content_type: str = "text/markdown") -> dict:
    response = api.post(f"/prompts/{prompt_id}/files", {"fileName": name, "contentType": content_type,
                                                          "sizeBytes": size})
    assert response.status == 201, response.body
    return response.json()


def upload(aws: dict[str, str], created: dict, data: bytes) -> None:
    """What the browser's PUT to the presigned URL does."""
    url = urlsplit(created["upload"]["url"])
    path = unquote(url.path).lstrip("/")
    key = path if url.hostname.startswith(aws["PromptFilesBucket"]) else path.split("/", 1)[1]
    boto3.client("s3").put_object(Bucket=aws["PromptFilesBucket"], Key=key, Body=data,
                                  ContentType=created["file"]["contentType"])


# -- prompts ------------------------------------------------------------------------------------
def test_prompt_round_trip_create_read_replace_delete(api: ApiClient) -> None:
    created = create(api, description="Economy desk", systemPrompt="Write 원 after amounts.",
                     engine={"temperature": 0.1, "maxTokens": 2048, "webSearch": True})
    assert created["engine"] == {"model": None, "temperature": 0.1, "maxTokens": 2048, "webSearch": True}
    assert created["fileCount"] == 0
    assert created["budget"]["systemPromptBytes"] == len("Write 원 after amounts.".encode())
    assert created["budget"]["limitBytes"] == BUDGET

    read = api.get(f"/prompts/{created['promptId']}").json()
    assert read == created

    replaced = api.put(f"/prompts/{created['promptId']}", {"name": "Sports desk", "systemPrompt": "Short."})
    assert replaced.status == 200, replaced.body
    assert replaced.json()["name"] == "Sports desk"
    assert replaced.json()["engine"]["webSearch"] is False  # PUT replaces: omitted settings take defaults
    assert replaced.json()["createdAt"] == created["createdAt"]

    assert api.delete(f"/prompts/{created['promptId']}").status == 204
    assert_error(api.get(f"/prompts/{created['promptId']}"), 404, "NOT_FOUND")


def test_prompts_are_listed_newest_first_page_by_page(api: ApiClient) -> None:
    ids = [create(api, name=f"p{i}")["promptId"] for i in range(5)]
    first = api.get("/prompts", query="limit=3").json()
    second = api.get("/prompts", query=f"limit=3&cursor={first['nextCursor']}").json()
    listed = [p["promptId"] for p in first["items"] + second["items"]]
    assert listed == list(reversed(ids))
    assert second["nextCursor"] is None


@pytest.mark.parametrize(("body", "field"), [
    ({"name": ""}, "body.name"),
    ({"name": "x", "engine": {"temperature": 1.5}}, "body.engine.temperature"),
    ({"name": "x", "engine": {"maxTokens": 10}}, "body.engine.maxTokens"),
    ({"name": "x", "owner": "DEVICE#someone-else"}, "body.owner"),
])
def test_invalid_prompts_are_refused(api: ApiClient, body: dict, field: str) -> None:
    error = assert_error(api.post("/prompts", body), 422, "VALIDATION_ERROR")
    assert any(d["field"] == field for d in error["details"]), error


def test_a_model_the_deployment_does_not_offer_is_refused(api: ApiClient) -> None:
    error = assert_error(api.post("/prompts", {"name": "x", "engine": {"model": "claude-opus-4-5"}}),
                         422, "UNPROCESSABLE")
    assert "not offered" in error["message"]


def test_another_owners_prompt_is_exactly_like_a_missing_one(api: ApiClient) -> None:
    prompt = create(api, systemPrompt="secret house rules")
    file = add_file(api, prompt["promptId"])["file"]
    other = api.as_device("another-device-0001")
    pid = prompt["promptId"]
    for response in (other.get(f"/prompts/{pid}"), other.put(f"/prompts/{pid}", {"name": "mine now"}),
                     other.delete(f"/prompts/{pid}"), other.get(f"/prompts/{pid}/files"),
                     other.post(f"/prompts/{pid}/files", {"fileName": "a.txt", "contentType": "text/plain",
                                                          "sizeBytes": 5}),
                     other.delete(f"/prompts/{pid}/files/{file['fileId']}")):
        assert_error(response, 404, "NOT_FOUND")
    assert other.get("/prompts").json()["items"] == []
    assert api.get(f"/prompts/{pid}").json()["name"] == "Desk"  # untouched
    assert api.get(f"/prompts/{pid}/files").json()["items"][0]["fileId"] == file["fileId"]


def test_system_prompt_over_the_budget_is_refused_and_the_prompt_kept(api: ApiClient) -> None:
    prompt = create(api, systemPrompt="keep me")
    add_file(api, prompt["promptId"], size=FILE_MAX)
    too_long = "가" * ((BUDGET - FILE_MAX) // 3 + 1)  # 3 UTF-8 bytes each: just over what is left
    error = assert_error(api.put(f"/prompts/{prompt['promptId']}", {"name": "x", "systemPrompt": too_long}),
                         422, "PROMPT_BUDGET_EXCEEDED")
    assert error["details"][0]["limitBytes"] == BUDGET and error["details"][0]["fileBytes"] == FILE_MAX
    assert api.get(f"/prompts/{prompt['promptId']}").json()["systemPrompt"] == "keep me"


# -- files --------------------------------------------------------------------------------------
def test_file_gets_an_upload_url_signed_for_its_type_and_size_under_the_owners_prefix(api: ApiClient) -> None:
    prompt = create(api)
    created = add_file(api, prompt["promptId"], name="하우스 스타일.md", size=1234)
    url = urlsplit(created["upload"]["url"])
    query = parse_qs(url.query)
    assert created["upload"]["method"] == "PUT"
    assert created["upload"]["headers"] == {"Content-Type": "text/markdown", "Content-Length": "1234"}
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]
    assert query["X-Amz-Expires"] == ["300"]
    device = api.device_id
    assert unquote(url.path).endswith(f"/prompt-files/DEVICE/{device}/{prompt['promptId']}/"
                                      f"{created['file']['fileId']}.md")
    assert created["file"] | {"createdAt": None} == {
        "fileId": created["file"]["fileId"], "fileName": "하우스 스타일.md", "contentType": "text/markdown",
        "sizeBytes": 1234, "createdAt": None, "uploaded": False}
    assert created["budget"]["fileBytes"] == 1234
    assert api.get(f"/prompts/{prompt['promptId']}").json()["fileCount"] == 1


def test_file_list_shows_what_was_uploaded(api: ApiClient, aws: dict[str, str]) -> None:
    prompt = create(api)
    done = add_file(api, prompt["promptId"], name="a.md", size=5)
    add_file(api, prompt["promptId"], name="b.txt", size=7, content_type="text/plain")
    upload(aws, done, b"hello")
    listed = api.get(f"/prompts/{prompt['promptId']}/files").json()
    assert [(f["fileName"], f["uploaded"]) for f in listed["items"]] == [("a.md", True), ("b.txt", False)]
    assert listed["budget"]["fileBytes"] == 12


def test_deleting_a_file_removes_the_object_and_frees_the_budget(api: ApiClient, aws: dict[str, str]) -> None:
    prompt = create(api)
    created = add_file(api, prompt["promptId"], size=5)
    upload(aws, created, b"hello")
    assert objects_of(aws, api)
    assert api.delete(f"/prompts/{prompt['promptId']}/files/{created['file']['fileId']}").status == 204
    assert objects_of(aws, api) == []
    after = api.get(f"/prompts/{prompt['promptId']}").json()
    assert (after["fileCount"], after["budget"]["fileBytes"]) == (0, 0)
    assert_error(api.delete(f"/prompts/{prompt['promptId']}/files/{created['file']['fileId']}"), 404, "NOT_FOUND")


def test_deleting_a_prompt_removes_its_files_and_objects(api: ApiClient, aws: dict[str, str]) -> None:
    prompt = create(api)
    for name in ("a.md", "b.md"):
        upload(aws, add_file(api, prompt["promptId"], name=name, size=2), b"hi")
    assert len(objects_of(aws, api)) == 2
    assert api.delete(f"/prompts/{prompt['promptId']}").status == 204
    assert objects_of(aws, api) == []
    items = boto3.resource("dynamodb").Table(aws["Table"]).query(
        KeyConditionExpression=Key("PK").eq(f"DEVICE#{api.device_id}"))["Items"]
    assert items == []


@pytest.mark.parametrize(("body", "field"), [
    ({"fileName": "guide.pdf", "contentType": "text/plain", "sizeBytes": 10}, "body.fileName"),
    ({"fileName": "guide.md", "contentType": "application/pdf", "sizeBytes": 10}, "body.contentType"),
    ({"fileName": "../x.md", "contentType": "text/markdown", "sizeBytes": 10}, "body.fileName"),
    ({"fileName": "guide.md", "contentType": "text/markdown", "sizeBytes": 0}, "body.sizeBytes"),
])
def test_only_plain_text_and_markdown_files_with_a_size(api: ApiClient, body: dict, field: str) -> None:
    prompt = create(api)
    error = assert_error(api.post(f"/prompts/{prompt['promptId']}/files", body), 422, "VALIDATION_ERROR")
    assert any(d["field"] == field for d in error["details"]), error


def test_a_file_over_the_size_limit_is_refused(api: ApiClient) -> None:
    prompt = create(api)
    response = api.post(f"/prompts/{prompt['promptId']}/files",
                        {"fileName": "big.md", "contentType": "text/markdown", "sizeBytes": FILE_MAX + 1})
    assert str(FILE_MAX) in assert_error(response, 413, "PAYLOAD_TOO_LARGE")["message"]


def test_a_file_that_would_overflow_the_budget_is_refused_clearly(api: ApiClient) -> None:
    prompt = create(api, systemPrompt="x" * 10_000)
    add_file(api, prompt["promptId"], name="a.md", size=FILE_MAX)
    response = api.post(f"/prompts/{prompt['promptId']}/files",
                        {"fileName": "b.md", "contentType": "text/markdown", "sizeBytes": FILE_MAX})
    error = assert_error(response, 422, "PROMPT_BUDGET_EXCEEDED")
    assert error["details"] == [{"limitBytes": BUDGET, "usedBytes": 10_000 + 2 * FILE_MAX,
                                 "systemPromptBytes": 10_000, "fileBytes": 2 * FILE_MAX}]
    assert "b.md does not fit" in error["message"]
    assert api.get(f"/prompts/{prompt['promptId']}").json()["fileCount"] == 1


def test_at_most_the_configured_number_of_files(api: ApiClient) -> None:
    prompt = create(api)
    for i in range(MAX_FILES):
        add_file(api, prompt["promptId"], name=f"f{i}.txt", size=1, content_type="text/plain")
    response = api.post(f"/prompts/{prompt['promptId']}/files",
                        {"fileName": "one-more.txt", "contentType": "text/plain", "sizeBytes": 1})
    assert_error(response, 409, "CONFLICT")
