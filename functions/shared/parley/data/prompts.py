"""The prompts aggregate: a proofreading prompt and the records of its reference files.

    prompt  PK=<owner>  SK=PROMPT#<promptId>  GSI1PK=PROMPTS#<owner>  GSI1SK=PROMPT#<promptId>
            (name, description, systemPrompt, engine, systemPromptBytes, fileBytes, fileCount)
    file    PK=<owner>  SK=PROMPT#<promptId>#FILE#<fileId>  (fileName, contentType, sizeBytes, objectKey)

The prompt's byte and file counters change in the same transaction as its files, conditional on
what was read, so the budget holds under concurrent adds.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key

from parley.data import keys
from parley.data.store import Listing, Page, Repository

CONDITION_FAILED = "ConditionalCheckFailedException"


class PromptRecords(Repository):
    def get(self, owner: str, prompt_id: str) -> dict[str, Any] | None:
        return self.store.get(owner, keys.prompt_sk(prompt_id))

    def create(self, item: dict[str, Any]) -> None:
        self.store.put(item, ConditionExpression="attribute_not_exists(SK)")

    def page(self, owner: str, *, limit: int, cursor: str | None) -> Page:
        """The owner's prompts, newest first, through GSI1."""
        prompts = (keys.PROMPT_PREFIX, keys.PROMPT_PREFIX + "~")
        listing = Listing("prompts", exact={"PK": owner, "GSI1PK": keys.prompts_gsi1pk(owner)},
                          ranges={"SK": prompts, "GSI1SK": prompts})
        return self.store.query_page(index=keys.GSI1, key=Key("GSI1PK").eq(keys.prompts_gsi1pk(owner)),
                                     limit=limit, listing=listing, cursor=cursor, forward=False)

    def update(self, owner: str, prompt_id: str, fields: dict[str, Any], *, max_file_bytes: int,
               now: str) -> dict[str, Any] | None:
        """Replace the prompt's name, description, systemPrompt, systemPromptBytes and engine, if it
        exists and its files take at most ``max_file_bytes``; the new item, or None when not."""
        return self.store.updated_if(
            Key={"PK": owner, "SK": keys.prompt_sk(prompt_id)},
            UpdateExpression="SET #n = :name, description = :desc, systemPrompt = :text, "
                             "systemPromptBytes = :size, engine = :engine, updatedAt = :now",
            ConditionExpression="attribute_exists(SK) AND fileBytes <= :room",
            ExpressionAttributeNames={"#n": "name"},
            ExpressionAttributeValues={":name": fields["name"], ":desc": fields["description"],
                                       ":text": fields["systemPrompt"], ":size": fields["systemPromptBytes"],
                                       ":engine": fields["engine"], ":now": now, ":room": max_file_bytes})

    def delete(self, owner: str, prompt_id: str, files: list[dict[str, Any]]) -> None:
        """The files' records, then the prompt."""
        if files:
            self.store.delete_keys([{"PK": f["PK"], "SK": f["SK"]} for f in files])
        self.store.delete(owner, keys.prompt_sk(prompt_id))

    # -- files -------------------------------------------------------------------------------
    def files(self, owner: str, prompt_id: str) -> list[dict[str, Any]]:
        return list(self.store.query_all(
            key=Key("PK").eq(owner) & Key("SK").begins_with(keys.prompt_files_prefix(prompt_id))))

    def file(self, owner: str, prompt_id: str, file_id: str) -> dict[str, Any] | None:
        return self.store.get(owner, keys.prompt_file_sk(prompt_id, file_id))

    def add_file(self, owner: str, prompt_id: str, item: dict[str, Any], *, seen: dict[str, Any], max_files: int,
                 now: str) -> bool:
        """Save file record ``item`` and count it on the prompt, if the prompt's text and files are
        still as ``seen`` and it has fewer than ``max_files``; False when the prompt changed."""
        return self.store.transacted_if([
            {"Update": {
                "Key": {"PK": owner, "SK": keys.prompt_sk(prompt_id)},
                "UpdateExpression": ("SET fileBytes = fileBytes + :size, fileCount = fileCount + :one, "
                                     "updatedAt = :now"),
                "ConditionExpression": "attribute_exists(SK) AND systemPromptBytes = :spb AND fileBytes = :fb "
                                       "AND fileCount < :max",
                "ExpressionAttributeValues": {":size": item["sizeBytes"], ":one": 1, ":now": now,
                                              ":spb": int(seen.get("systemPromptBytes", 0)),
                                              ":fb": int(seen.get("fileBytes", 0)), ":max": max_files},
            }},
            {"Put": {"Item": item, "ConditionExpression": "attribute_not_exists(SK)"}},
        ])

    def delete_file(self, owner: str, prompt_id: str, item: dict[str, Any], *, now: str) -> bool:
        """Remove file record ``item`` and uncount it; False when it was gone already."""
        return self.store.transacted_if([
            {"Delete": {"Key": {"PK": owner, "SK": item["SK"]}, "ConditionExpression": "attribute_exists(SK)"}},
            {"Update": {
                "Key": {"PK": owner, "SK": keys.prompt_sk(prompt_id)},
                "UpdateExpression": ("SET fileBytes = fileBytes - :size, fileCount = fileCount - :one, "
                                     "updatedAt = :now"),
                "ConditionExpression": "attribute_exists(SK)",
                "ExpressionAttributeValues": {":size": int(item["sizeBytes"]), ":one": 1, ":now": now},
            }},
        ])
