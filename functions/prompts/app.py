"""Proofreading prompts (seed 003's prompt CRUD) and their reference files."""

from __future__ import annotations

import os

from aws_lambda_powertools.event_handler import Response

from parley.core import clients
from parley.core.api import make_resolver, no_content, owner_of, rest_handler
from parley.core.collection_routes import Delete, Page, Read, collection_routes
from parley.core.config import PromptsEnv
from parley.data.store import Store
from parley.proofreading.library import PromptLibrary
from parley.proofreading.models import NewPromptFile, Prompt, PromptFileCreated, PromptFileList, PromptIn, PromptPage
from parley.proofreading.service import prompt_library

ENV = PromptsEnv.load(os.environ)
app = make_resolver(cors_allow_origin=ENV.cors_allow_origin, max_body_bytes=ENV.max_body_bytes)


def library() -> PromptLibrary:
    return prompt_library(ENV, Store(clients.table(ENV.table_name)), clients.client("s3"))


@app.post("/prompts", summary="Create a proofreading prompt", tags=["Proofreading"],
          responses={201: {"description": "The new prompt", "content": {"application/json": {"model": Prompt}}}})
def create_prompt(body: PromptIn) -> tuple[Prompt, int]:
    return library().create(owner_of(app), body), 201


collection_routes(
    app, "/prompts", "promptId", noun="prompt", tags=["Proofreading"],
    page=Page(PromptPage, "List prompts, newest first",
              lambda owner, limit, cursor: library().page(owner, limit=limit, cursor=cursor)),
    read=Read(Prompt, "A prompt with its size budget", lambda owner, prompt_id: library().get(owner, prompt_id)),
    delete=Delete("Delete a prompt and its files", lambda owner, prompt_id: library().delete(owner, prompt_id),
                  counted="files"))


@app.put("/prompts/<promptId>", summary="Replace a prompt's text and settings", tags=["Proofreading"])
def put_prompt(promptId: str, body: PromptIn) -> Prompt:  # noqa: N803
    return library().update(owner_of(app), promptId, body)


@app.post("/prompts/<promptId>/files", summary="Register a file and get its upload URL", tags=["Proofreading"],
          responses={201: {"description": "The file and a presigned PUT URL",
                           "content": {"application/json": {"model": PromptFileCreated}}}})
def add_file(promptId: str, body: NewPromptFile) -> tuple[PromptFileCreated, int]:  # noqa: N803
    return library().add_file(owner_of(app), promptId, body), 201


@app.get("/prompts/<promptId>/files", summary="A prompt's files, with upload state and budget", tags=["Proofreading"])
def list_files(promptId: str) -> PromptFileList:  # noqa: N803
    return library().list_files(owner_of(app), promptId)


@app.delete("/prompts/<promptId>/files/<fileId>", summary="Delete a file (record and object)", tags=["Proofreading"],
            responses={204: {"description": "Deleted"}})
def delete_file(promptId: str, fileId: str) -> Response[str]:  # noqa: N803
    library().delete_file(owner_of(app), promptId, fileId)
    return no_content()


handler = rest_handler(app)
