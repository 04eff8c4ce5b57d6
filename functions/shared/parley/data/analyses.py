"""The analyses aggregate: one item per analysed session.

    analysis  PK=<owner>  SK=SESSION#<sessionId>#ANALYSIS  (status, fingerprint, attempt, executionName,
                                                           report, scores, cefr, error, timestamps)

Every write is conditional on the execution that owns the item, so a run that a newer one
superseded (or a session deleted meanwhile) changes nothing: those writes return False.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from parley.core.errors import ServiceUnavailable
from parley.data import keys
from parley.data.store import Repository, error_code

CONDITION_FAILED = "ConditionalCheckFailedException"
MAX_BATCH_GET = 100
ITEM_TYPE = "ANALYSIS"


class AnalysisRecords(Repository):
    def get(self, owner: str, session_id: str) -> dict[str, Any] | None:
        return self.store.get(owner, keys.analysis_sk(session_id))

    def claim(self, item: dict[str, Any], *, seen_execution: str | None) -> bool:
        """Write a new running ``item`` if the analysis is still as read (owned by ``seen_execution``,
        or absent when None); False when another start won the race."""
        condition: dict[str, Any] = (
            {"ConditionExpression": "executionName = :seen", "ExpressionAttributeValues": {":seen": seen_execution}}
            if seen_execution is not None else {"ConditionExpression": "attribute_not_exists(SK)"})
        try:
            self.store.put(item, **condition)
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
            return False
        return True

    def complete(self, owner: str, session_id: str, *, execution: str, report_json: str,
                 scores: dict[str, int | None], cefr: str, now: str) -> bool:
        """running -> completed with the report, if ``execution`` still owns the item."""
        return self.store.update_if(
            Key={"PK": owner, "SK": keys.analysis_sk(session_id)},
            UpdateExpression="SET #st = :done, report = :report, scores = :scores, cefr = :cefr, "
                             "completedAt = :now REMOVE #err, failedAt",
            ConditionExpression="attribute_exists(SK) AND executionName = :name",
            ExpressionAttributeNames={"#st": "status", "#err": "error"},
            ExpressionAttributeValues={":done": "completed", ":report": report_json, ":scores": scores,
                                       ":cefr": cefr, ":now": now, ":name": execution})

    def fail(self, owner: str, session_id: str, *, execution: str, error: dict[str, str], now: str) -> bool:
        """-> failed with ``error``, if ``execution`` still owns the item."""
        return self.store.update_if(
            Key={"PK": owner, "SK": keys.analysis_sk(session_id)},
            UpdateExpression="SET #st = :failed, #err = :err, failedAt = :now",
            ConditionExpression="attribute_exists(SK) AND executionName = :name",
            ExpressionAttributeNames={"#st": "status", "#err": "error"},
            ExpressionAttributeValues={":failed": "failed", ":err": error, ":now": now, ":name": execution})

    def scores(self, owner: str, session_ids: list[str]) -> list[dict[str, Any]]:
        """The scores part of these sessions' analyses (those that exist), in BatchGetItem chunks."""
        sort_keys = [keys.analysis_sk(sid) for sid in session_ids]
        found: list[dict[str, Any]] = []
        for start in range(0, len(sort_keys), MAX_BATCH_GET):
            request: dict[str, Any] = {self.store.name: {
                "Keys": [{"PK": owner, "SK": sk} for sk in sort_keys[start:start + MAX_BATCH_GET]],
                "ProjectionExpression": "sessionId, #st, scores, cefr, completedAt",
                "ExpressionAttributeNames": {"#st": "status"}}}
            for _ in range(6):
                if not request:
                    break
                self.store.calls["BatchGetItem"] += 1
                result = self.store.client.batch_get_item(RequestItems=request)
                found.extend(result.get("Responses", {}).get(self.store.name, []))
                request = result.get("UnprocessedKeys") or {}
            if request:
                raise ServiceUnavailable("The data store is busy; retry in a moment.", headers={"Retry-After": "1"})
        return found
