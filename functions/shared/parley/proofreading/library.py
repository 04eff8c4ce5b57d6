"""Prompts and their reference files (seed 003's ``prompts`` and ``files`` tables), per owner.

A prompt is the desk's own instructions plus engine settings; its files (plain text or Markdown:
a house style guide, a glossary) are uploaded straight to S3 through a presigned PUT URL signed
for the exact type and size declared. Their text joins the system prompt after the fixed
proofreading instructions, forming a prefix that does not change between requests, so the
engines can cache it.

The budget: the UTF-8 bytes of the prompt's text plus the declared sizes of its files may not
exceed ``budget_bytes``. It is checked, atomically, whenever the text changes or a file is added,
and once more against the actual bytes when the prompt is used; an answer over it is refused with
PROMPT_BUDGET_EXCEEDED and the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from parley.core.errors import Conflict, NotFound, PayloadTooLarge, PromptBudgetExceeded, UnprocessableEntity
from parley.core.ids import is_ulid, iso_micros, new_ulid, utcnow
from parley.core.observability import logger
from parley.data import keys
from parley.data.prompts import PromptRecords
from parley.data.store import Store, error_code
from parley.proofreading import instructions as texts
from parley.proofreading.models import (
    EngineSettings,
    NewPromptFile,
    Prompt,
    PromptBudget,
    PromptFile,
    PromptFileCreated,
    PromptFileList,
    PromptIn,
    PromptPage,
    UploadTarget,
)

OBJECT_PREFIX = "prompt-files/"
_EXTENSIONS = {"text/plain": ".txt", "text/markdown": ".md"}


@dataclass(frozen=True)
class PromptLimits:
    budget_bytes: int
    file_max_bytes: int
    max_files: int
    upload_expiry_seconds: int
    allowed_models: tuple[str, ...] = ()


@dataclass(frozen=True)
class PromptContext:
    """What a request is built from: the settings and the stable system blocks."""

    prompt_id: str | None
    engine: EngineSettings
    system_prompt: str
    documents: list[tuple[str, str]] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)

    def blocks(self, instructions: str) -> tuple[str, ...]:
        """The system prompt, most stable first: instructions, house text, reference documents."""
        blocks = [instructions]
        if self.system_prompt.strip():
            blocks.append(f"{texts.HOUSE_STYLE_HEADING}\n{self.system_prompt}")
        if self.documents:
            blocks.append(texts.reference_block(self.documents))
        return tuple(blocks)


def text_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def object_key(owner: str, prompt_id: str, file_id: str, content_type: str) -> str:
    """``prompt-files/DEVICE/<deviceId>/<promptId>/<fileId>.md`` — one owner's files share a prefix."""
    return f"{OBJECT_PREFIX}{owner.replace('#', '/', 1)}/{prompt_id}/{file_id}{_EXTENSIONS[content_type]}"


def _file_from_item(item: dict[str, Any], uploaded: bool | None = None) -> PromptFile:
    return PromptFile(file_id=item["fileId"], file_name=item["fileName"], content_type=item["contentType"],
                      size_bytes=int(item["sizeBytes"]), created_at=item["createdAt"], uploaded=uploaded)


class PromptLibrary:
    def __init__(self, store: Store, s3: Any, *, bucket: str, limits: PromptLimits) -> None:
        self.store = store
        self.records = PromptRecords(store)
        self.s3 = s3
        self.bucket = bucket
        self.limits = limits

    # -- budget ------------------------------------------------------------------------------
    def budget(self, system_prompt_bytes: int, file_bytes: int) -> PromptBudget:
        used = system_prompt_bytes + file_bytes
        limit = self.limits.budget_bytes
        return PromptBudget(limit_bytes=limit, system_prompt_bytes=system_prompt_bytes, file_bytes=file_bytes,
                            used_bytes=used, remaining_bytes=max(0, limit - used))

    def _over_budget(self, system_prompt_bytes: int, file_bytes: int, what: str) -> PromptBudgetExceeded:
        used = system_prompt_bytes + file_bytes
        return PromptBudgetExceeded(
            f"{what}: the prompt's text and files would be {used} bytes; the budget is "
            f"{self.limits.budget_bytes} bytes. Shorten the text or remove a file.",
            details=[{"limitBytes": self.limits.budget_bytes, "usedBytes": used,
                      "systemPromptBytes": system_prompt_bytes, "fileBytes": file_bytes}])

    def _check_model(self, settings: EngineSettings) -> None:
        if settings.model is not None and settings.model not in self.limits.allowed_models:
            allowed = ", ".join(self.limits.allowed_models) or "none (leave model null)"
            raise UnprocessableEntity(
                f"Model {settings.model!r} is not offered here; allowed: {allowed}.",
                details=[{"field": "body.engine.model", "allowed": list(self.limits.allowed_models)}])

    # -- prompts -----------------------------------------------------------------------------
    def _item(self, owner: str, prompt_id: str) -> dict[str, Any]:
        item = self.records.get(owner, prompt_id) if is_ulid(prompt_id) else None
        if not item:
            raise NotFound(f"Prompt {prompt_id!r} was not found.")
        return item

    def _prompt(self, item: dict[str, Any]) -> Prompt:
        return Prompt(
            prompt_id=item["promptId"], name=item["name"], description=item.get("description", ""),
            system_prompt=item.get("systemPrompt", ""), engine=EngineSettings.model_validate(item.get("engine", {})),
            file_count=int(item.get("fileCount", 0)),
            budget=self.budget(int(item.get("systemPromptBytes", 0)), int(item.get("fileBytes", 0))),
            created_at=item["createdAt"], updated_at=item["updatedAt"],
        )

    def create(self, owner: str, body: PromptIn) -> Prompt:
        self._check_model(body.engine)
        size = text_bytes(body.system_prompt)
        if size > self.limits.budget_bytes:
            raise self._over_budget(size, 0, "The system prompt is too long")
        prompt_id = new_ulid()
        now = iso_micros(utcnow())
        item = {
            "PK": owner, "SK": keys.prompt_sk(prompt_id), "GSI1PK": keys.prompts_gsi1pk(owner),
            "GSI1SK": keys.prompt_sk(prompt_id), "type": "PROMPT", "promptId": prompt_id, "name": body.name,
            "description": body.description, "systemPrompt": body.system_prompt,
            "engine": _engine_item(body.engine), "systemPromptBytes": size, "fileBytes": 0, "fileCount": 0,
            "createdAt": now, "updatedAt": now,
        }
        self.records.create(item)
        return self._prompt(item)

    def page(self, owner: str, *, limit: int, cursor: str | None) -> PromptPage:
        page = self.records.page(owner, limit=limit, cursor=cursor)
        return PromptPage(items=[self._prompt(i) for i in page.items], next_cursor=page.cursor)

    def get(self, owner: str, prompt_id: str) -> Prompt:
        return self._prompt(self._item(owner, prompt_id))

    def update(self, owner: str, prompt_id: str, body: PromptIn) -> Prompt:
        self._check_model(body.engine)
        current = self._item(owner, prompt_id)
        size = text_bytes(body.system_prompt)
        updated = self.records.update(owner, prompt_id, {
            "name": body.name, "description": body.description, "systemPrompt": body.system_prompt,
            "systemPromptBytes": size, "engine": _engine_item(body.engine)},
            max_file_bytes=self.limits.budget_bytes - size, now=iso_micros(utcnow()))
        if updated is None:
            latest = self._item(owner, prompt_id)  # NotFound if deleted meanwhile
            raise self._over_budget(size, int(latest.get("fileBytes", current.get("fileBytes", 0))),
                                    "The new system prompt does not fit")
        return self._prompt(updated)

    def delete(self, owner: str, prompt_id: str) -> int:
        """Delete the prompt, its files' records and objects; returns how many files went with it."""
        self._item(owner, prompt_id)
        files = self.records.files(owner, prompt_id)
        if files:
            self.s3.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": f["objectKey"]} for f in files], "Quiet": True})
        self.records.delete(owner, prompt_id, files)
        return len(files)

    # -- files -------------------------------------------------------------------------------
    def add_file(self, owner: str, prompt_id: str, body: NewPromptFile) -> PromptFileCreated:
        if body.size_bytes > self.limits.file_max_bytes:
            raise PayloadTooLarge(f"The file is {body.size_bytes} bytes; a prompt file may be at most "
                                  f"{self.limits.file_max_bytes} bytes.")
        prompt = self._item(owner, prompt_id)
        spb, file_bytes = int(prompt.get("systemPromptBytes", 0)), int(prompt.get("fileBytes", 0))
        if spb + file_bytes + body.size_bytes > self.limits.budget_bytes:
            raise self._over_budget(spb, file_bytes + body.size_bytes, f"{body.file_name} does not fit")
        if int(prompt.get("fileCount", 0)) >= self.limits.max_files:
            raise Conflict(f"A prompt may have at most {self.limits.max_files} files; delete one first.")
        file_id = new_ulid()
        now = utcnow()
        key = object_key(owner, prompt_id, file_id, body.content_type)
        item = {
            "PK": owner, "SK": keys.prompt_file_sk(prompt_id, file_id), "type": "PROMPT_FILE", "promptId": prompt_id,
            "fileId": file_id, "fileName": body.file_name, "contentType": body.content_type,
            "sizeBytes": body.size_bytes, "objectKey": key, "createdAt": iso_micros(now),
        }
        if not self.records.add_file(owner, prompt_id, item, seen=prompt, max_files=self.limits.max_files,
                                     now=iso_micros(now)):
            raise Conflict("The prompt changed while the file was being added; try again.")
        expires = now + timedelta(seconds=self.limits.upload_expiry_seconds)
        url = self.s3.generate_presigned_url(
            "put_object", ExpiresIn=self.limits.upload_expiry_seconds,
            Params={"Bucket": self.bucket, "Key": key, "ContentType": body.content_type,
                    "ContentLength": body.size_bytes})
        return PromptFileCreated(
            file=_file_from_item(item, uploaded=False),
            upload=UploadTarget(url=url, headers={"Content-Type": body.content_type,
                                                  "Content-Length": str(body.size_bytes)},
                                expires_at=expires.strftime("%Y-%m-%dT%H:%M:%SZ")),
            budget=self.budget(spb, file_bytes + body.size_bytes),
        )

    def _file_items(self, owner: str, prompt_id: str) -> list[dict[str, Any]]:
        return self.records.files(owner, prompt_id)

    def _uploaded(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def list_files(self, owner: str, prompt_id: str) -> PromptFileList:
        prompt = self._item(owner, prompt_id)
        items = self._file_items(owner, prompt_id)
        budget = self.budget(int(prompt.get("systemPromptBytes", 0)), int(prompt.get("fileBytes", 0)))
        return PromptFileList(items=[_file_from_item(i, self._uploaded(i["objectKey"])) for i in items], budget=budget)

    def delete_file(self, owner: str, prompt_id: str, file_id: str) -> None:
        self._item(owner, prompt_id)
        item = self.records.file(owner, prompt_id, file_id) if is_ulid(file_id) else None
        if not item:
            raise NotFound(f"File {file_id!r} was not found on prompt {prompt_id!r}.")
        self.s3.delete_object(Bucket=self.bucket, Key=item["objectKey"])  # first: a retry finds the record
        if not self.records.delete_file(owner, prompt_id, item, now=iso_micros(utcnow())):
            raise NotFound(f"File {file_id!r} was not found on prompt {prompt_id!r}.")

    # -- use ---------------------------------------------------------------------------------
    def context(self, owner: str, prompt_id: str | None) -> PromptContext:
        """The prompt's settings and system text with its files' text, checked against the budget."""
        if prompt_id is None:
            return PromptContext(prompt_id=None, engine=EngineSettings(), system_prompt="")
        prompt = self._item(owner, prompt_id)
        system_prompt = prompt.get("systemPrompt", "")
        documents: list[tuple[str, str]] = []
        skipped: list[str] = []
        used = text_bytes(system_prompt)
        for item in self._file_items(owner, prompt_id):
            text = self._read_text(item)
            if text is None:
                skipped.append(item["fileName"])
                continue
            used += text_bytes(text)
            documents.append((item["fileName"], text))
        if used > self.limits.budget_bytes:
            raise self._over_budget(text_bytes(system_prompt), used - text_bytes(system_prompt),
                                    f"Prompt {prompt_id!r} is over the budget")
        return PromptContext(prompt_id=prompt_id, engine=EngineSettings.model_validate(prompt.get("engine", {})),
                             system_prompt=system_prompt, documents=documents, skipped_files=skipped)

    def _read_text(self, item: dict[str, Any]) -> str | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=item["objectKey"])["Body"].read()
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        try:
            return body.decode("utf-8-sig")  # type: ignore[no-any-return]
        except UnicodeDecodeError:
            logger.info("Prompt file is not UTF-8; left out", extra={"file_id": item["fileId"]})
            return None


def _engine_item(settings: EngineSettings) -> dict[str, Any]:
    """Engine settings as a table item (numbers as strings where DynamoDB would want Decimal)."""
    data = settings.model_dump(by_alias=True)
    data["temperature"] = str(settings.temperature)
    return data
