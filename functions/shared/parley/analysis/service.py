"""The analysis of a session: starting it (once per unchanged session), its status, the tasks of
the workflow (measure, judge, save, fail) and the owner's progress across sessions.

One item per session holds the analysis: ``PK=<owner>, SK=SESSION#<sessionId>#ANALYSIS`` with
``status`` (running | completed | failed), the session ``fingerprint`` it was started for, the
``executionName`` of the run that owns it, and, when completed, ``report`` (the JSON report) and
``scores`` (the four scores and the CEFR estimate, for ``GET /progress``).

Idempotency: the fingerprint hashes the session's messageCount, lastMessageAt and the ids of the
transcripts saved under it (and the prompt version). Starting again for an unchanged session
returns the running or completed analysis; only a failed one is run again. The execution name is
``<sessionId>-<fingerprint>-<attempt>`` and the item is written with a condition on what was read,
so two concurrent starts make one execution and one model call. The workflow's save and fail are
conditional on its execution name: a run that a newer one superseded changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from parley.analysis.metrics import Measurements, SpokenWord, measure
from parley.analysis.prompt import VERSION as PROMPT_VERSION
from parley.analysis.report import DIMENSIONS, AnalysisReport, Cefr
from parley.core.errors import AnalysisSuperseded, NotEnoughToAnalyse, NotFound, ServiceUnavailable
from parley.core.ids import is_ulid, iso_micros, parse_iso, utcnow
from parley.core.models import ApiModel
from parley.core.observability import logger
from parley.data import keys
from parley.data.analyses import ITEM_TYPE, AnalysisRecords
from parley.data.sessions import SessionRecords
from parley.data.store import Store, error_code
from parley.usage.quota import QuotaGuard

if TYPE_CHECKING:  # the judge (and the offline engine it registers) is only the judge function's
    from parley.analysis.judge import Conversation

AnalysisState = Literal["running", "completed", "failed"]
STALE_AFTER = timedelta(minutes=15)  # the state machine times out after 10 minutes


# -- boundary models ----------------------------------------------------------------------------
class AnalysisFailure(ApiModel):
    code: str = Field(description="The error's name, e.g. InvalidModelOutput, ProviderError, QuotaExceeded.")
    reason: str


class AnalysisStatus(ApiModel):
    session_id: str
    status: AnalysisState
    requested_at: str
    completed_at: str | None = None
    failed_at: str | None = None
    error: AnalysisFailure | None = None
    up_to_date: bool = Field(description="False when the session changed after this analysis was started.")
    report: AnalysisReport | None = None


class StartInput(BaseModel):
    """The execution's input (and what every task receives)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    owner: str = Field(pattern=r"^(DEVICE|USER)#[A-Za-z0-9._-]{1,128}$")
    session_id: str = Field(min_length=26, max_length=26)
    fingerprint: str = Field(min_length=8, max_length=64)
    execution_name: str = Field(min_length=1, max_length=80)


class CompletedDetail(BaseModel):
    """The ``AnalysisCompleted`` event's detail (and the save task's output)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    owner: str
    session_id: str
    execution_name: str
    cefr: Cefr
    scores: dict[str, int | None]
    completed_at: str


class SessionScores(ApiModel):
    session_id: str
    started_at: str
    topic: str
    level: str
    analysed_at: str
    cefr: Cefr
    complexity: int | None
    accuracy: int | None
    fluency: int | None
    pronunciation: int | None


class Trend(ApiModel):
    sessions: int = Field(description="Analysed sessions with this score.")
    first: int | None
    latest: int | None
    average: float | None
    change_per_session: float | None = Field(
        description="Least-squares slope of the score over the sessions, oldest to newest (+ is improving).")


class Progress(ApiModel):
    sessions_examined: int = Field(description="The owner's newest sessions that were looked at.")
    sessions: list[SessionScores] = Field(description="Analysed sessions among them, oldest first.")
    trend: dict[str, Trend]


# -- helpers ------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back to int/float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def fingerprint(meta: dict[str, Any], transcript_sks: Sequence[str]) -> str:
    basis = [PROMPT_VERSION, int(meta.get("messageCount", 0)), meta.get("lastMessageAt") or "",
             sorted(transcript_sks)]
    return hashlib.sha256(json.dumps(basis).encode()).hexdigest()[:16]


def slope(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    n = len(values)
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    denominator = sum((x - mean_x) ** 2 for x in range(n))
    return sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values)) / denominator


class Analyses:
    """Everything the API and the workflow's tasks do with a session's analysis."""

    def __init__(self, store: Store, *, retention_days: int = 90, min_learner_turns: int = 3,
                 sfn: Any = None, state_machine_arn: str = "", quota: QuotaGuard | None = None) -> None:
        self.store = store
        self.records = AnalysisRecords(store)
        self.sessions = SessionRecords(store)
        self.quota = quota
        self.retention = timedelta(days=retention_days)
        self.min_learner_turns = min_learner_turns
        self.sfn = sfn
        self.state_machine_arn = state_machine_arn

    # -- reading the session ----------------------------------------------------------------------
    def _meta(self, owner: str, session_id: str) -> dict[str, Any]:
        item = self.sessions.meta(owner, session_id) if is_ulid(session_id) else None
        if not item:
            raise NotFound(f"Session {session_id!r} was not found.")
        return item

    def _transcript_sks(self, owner: str, session_id: str) -> list[str]:
        return self.sessions.transcript_sort_keys(owner, session_id)

    def conversation(self, owner: str, session_id: str, *, meta: dict[str, Any] | None = None) -> Conversation:
        meta = meta or self._meta(owner, session_id)
        items = self.sessions.messages(owner, session_id, turns_only=True)
        turns = tuple((str(i["role"]), str(i["content"])) for i in items)
        from parley.analysis.judge import Conversation  # here, not at the top: only the judge function needs the judge

        return Conversation(turns=turns, level=meta.get("level"), topic=meta.get("topic"))

    def recordings(self, owner: str, session_id: str) -> list[list[SpokenWord]]:
        items = self.sessions.transcripts(owner, session_id)
        recordings = []
        for item in items:
            words = []
            for word in item.get("words") or []:
                try:
                    confidence = word.get("confidence")
                    words.append(SpokenWord(text=str(word["text"]), start=float(word["start"]),
                                            end=float(word["end"]),
                                            confidence=None if confidence is None else float(confidence)))
                except (KeyError, TypeError, ValueError):
                    continue  # an untimed word cannot be measured; the others still can
            recordings.append(words)
        return recordings

    # -- the workflow's tasks ---------------------------------------------------------------------
    def measure(self, owner: str, session_id: str) -> Measurements:
        from parley.ai import grammar

        meta = self._meta(owner, session_id)
        conversation = self.conversation(owner, session_id, meta=meta)
        dialect = str(meta.get("accent") or "US")  # the accent the learner practises: UK spelling is no error
        if not grammar.available():  # a function deployed without the Harper layer
            logger.warning("harper-py is not installed: grammar is not measured")
            dialect = ""
        return measure(conversation.learner, self.recordings(owner, session_id), dialect=dialect or None)

    def save(self, task: StartInput, report: AnalysisReport) -> CompletedDetail:
        now = iso_micros(utcnow())
        scores: dict[str, int | None] = {d: getattr(report.scores, d).score for d in DIMENSIONS}
        if not self.records.complete(task.owner, task.session_id, execution=task.execution_name,
                                     report_json=report.model_dump_json(by_alias=True), scores=scores,
                                     cefr=report.cefr, now=now):
            raise AnalysisSuperseded(
                f"Analysis {task.execution_name} was superseded (or its session deleted); not saved.")
        return CompletedDetail(owner=task.owner, session_id=task.session_id, execution_name=task.execution_name,
                               cefr=report.cefr, scores=scores, completed_at=now)

    def fail(self, task: StartInput, error: str, reason: str) -> bool:
        """Mark the run's analysis failed; False when a newer run owns the item (nothing changed)."""
        if not self.records.fail(task.owner, task.session_id, execution=task.execution_name,
                                 error={"code": error[:80], "reason": reason[:600]}, now=iso_micros(utcnow())):
            logger.info("Failure not recorded: superseded", extra={"execution": task.execution_name})
            return False
        return True

    # -- the API ----------------------------------------------------------------------------------
    def _status(self, item: dict[str, Any], current_fingerprint: str | None) -> AnalysisStatus:
        status: AnalysisState = item["status"]
        error = item.get("error")
        failed_at = item.get("failedAt")
        if status == "running" and utcnow() - parse_iso(item["requestedAt"]) > STALE_AFTER:
            status, failed_at = "failed", None
            error = {"code": "Timeout", "reason": "The analysis did not finish; start it again."}
        return AnalysisStatus(
            session_id=item["sessionId"], status=status, requested_at=item["requestedAt"],
            completed_at=item.get("completedAt") if status == "completed" else None,
            failed_at=failed_at if status == "failed" else None,
            error=AnalysisFailure(**error) if status == "failed" and error else None,
            up_to_date=current_fingerprint is None or item.get("fingerprint") == current_fingerprint,
            report=AnalysisReport.model_validate_json(item["report"])
            if status == "completed" and item.get("report") else None,
        )

    def get(self, owner: str, session_id: str) -> AnalysisStatus:
        meta = self._meta(owner, session_id)
        item = self.records.get(owner, session_id)
        if not item:
            raise NotFound(f"Session {session_id!r} has not been analysed; POST to this URL to start.")
        return self._status(item, fingerprint(meta, self._transcript_sks(owner, session_id)))

    def start(self, owner: str, session_id: str) -> tuple[AnalysisStatus, bool]:
        """Start the analysis unless one for the unchanged session is running or done.
        Returns (status, started)."""
        meta = self._meta(owner, session_id)
        turns = int(meta.get("turnCount", 0))
        if turns < self.min_learner_turns:
            raise NotEnoughToAnalyse(
                f"Too little to analyse: the session has {turns} learner turn(s); "
                f"at least {self.min_learner_turns} are needed.",
                details=[{"field": "turnCount", "message": f"needs at least {self.min_learner_turns}",
                          "value": turns}])
        current_fp = fingerprint(meta, self._transcript_sks(owner, session_id))
        existing = self.records.get(owner, session_id)
        if existing and existing.get("fingerprint") == current_fp:
            shown = self._status(existing, current_fp)
            if shown.status != "failed":
                return shown, False
        if self.quota is not None:
            self.quota.check(owner)  # 429 now rather than a failed analysis later (the judge checks again)
        attempt = int(existing.get("attempt", 0)) + 1 if existing else 1
        name = f"{session_id}-{current_fp}-{attempt}"
        now = iso_micros(utcnow())
        item = {
            "PK": owner, "SK": keys.analysis_sk(session_id), "type": ITEM_TYPE, "sessionId": session_id,
            "status": "running", "fingerprint": current_fp, "attempt": attempt, "executionName": name,
            "requestedAt": now, "expiresAt": int((utcnow() + self.retention).timestamp()),
        }
        if not self.records.claim(item, seen_execution=existing["executionName"] if existing else None):
            # Another request started it a moment ago: that one runs, this one reports it.
            return self.get(owner, session_id), False
        execution = StartInput(owner=owner, session_id=session_id, fingerprint=current_fp, execution_name=name)
        try:
            self.sfn.start_execution(stateMachineArn=self.state_machine_arn, name=name,
                                     input=execution.model_dump_json(by_alias=True))
        except ClientError as exc:
            if error_code(exc) != "ExecutionAlreadyExists":
                self.fail(execution, "StartFailed", "The analysis could not be started; try again.")
                logger.exception("StartExecution failed", extra={"execution": name})
                raise ServiceUnavailable("The analysis could not be started; nothing was billed. Retry shortly.",
                                         headers={"Retry-After": "2"}) from exc
        return self._status(item, current_fp), True

    def progress(self, owner: str, *, limit: int) -> Progress:
        page = self.sessions.page(owner, limit=limit, paged=False)
        metas = {m["sessionId"]: m for m in page.items}
        found = self.records.scores(owner, list(metas))
        rows = []
        for item in found:
            if item.get("status") != "completed" or "scores" not in item:
                continue
            meta = metas[item["sessionId"]]
            scores = _plain(item["scores"])
            rows.append(SessionScores(
                session_id=item["sessionId"], started_at=meta["startedAt"], topic=meta["topic"], level=meta["level"],
                analysed_at=item.get("completedAt", ""), cefr=item["cefr"], **{d: scores.get(d) for d in DIMENSIONS}))
        rows.sort(key=lambda r: r.started_at)
        trend: dict[str, Trend] = {}
        for dimension in DIMENSIONS:
            values = [v for r in rows if (v := getattr(r, dimension)) is not None]
            change = slope(values)
            trend[dimension] = Trend(
                sessions=len(values), first=values[0] if values else None, latest=values[-1] if values else None,
                average=round(sum(values) / len(values), 2) if values else None,
                change_per_session=None if change is None else round(change, 2))
        return Progress(sessions_examined=len(metas), sessions=rows, trend=trend)


# -- why an analysis failed, in words a learner can act on ----------------------------------------
_REASONS = {
    "ProviderError": "The AI service is unavailable right now; nothing was saved. Try again later.",
    "NotFound": "The session no longer exists.",
    "States.Timeout": "The analysis took too long and was stopped; try again.",
    "Lambda.Unknown": "The analysis step stopped unexpectedly; try again.",
}
_OWN_MESSAGE = {"InvalidModelOutput", "QuotaExceeded", "ProviderRejected", "NotEnoughToAnalyse"}


def failure_reason(error: str, cause: str | None) -> str:
    """The learner-facing reason for a Catch's ``{Error, Cause}`` (Cause is Lambda's error JSON)."""
    message = cause or ""
    try:
        parsed = json.loads(message) if message else {}
        if isinstance(parsed, dict) and parsed.get("errorMessage"):
            message = str(parsed["errorMessage"])
    except ValueError:
        pass
    if error in _OWN_MESSAGE and message:
        return message[:600]
    return _REASONS.get(error, f"The analysis failed unexpectedly ({error}); try again.")


def analyses_from(env: Any, store: Store) -> Analyses:
    """The analysis API side, configured from a function's environment (``AnalysisApiEnv``, ``ChatEnv``)."""
    from parley.core import clients
    from parley.usage.quota import guard_from

    return Analyses(store, retention_days=env.data_retention_days, min_learner_turns=env.analysis_min_learner_turns,
                    sfn=clients.client("stepfunctions"), state_machine_arn=env.analysis_state_machine_arn,
                    quota=guard_from(env, store))
