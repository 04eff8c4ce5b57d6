"""The session analysis API: start it, read its status and report, and the learner's progress."""

from __future__ import annotations

import os
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from parley.analysis.service import Analyses, AnalysisStatus, Progress, analyses_from
from parley.core import clients
from parley.core.api import make_resolver, owner_of, rest_handler
from parley.core.config import AnalysisApiEnv
from parley.core.observability import logger
from parley.data.store import Store

ENV = AnalysisApiEnv.load(os.environ)
app = make_resolver(cors_allow_origin=ENV.cors_allow_origin, max_body_bytes=ENV.max_body_bytes)


def analyses() -> Analyses:
    return analyses_from(ENV, Store(clients.table(ENV.table_name)))


@app.post("/sessions/<sessionId>/analysis", summary="Analyse a session (CAFP report)", tags=["Analysis"],
          responses={
              202: {"description": "Started, or already running for this unchanged session",
                    "content": {"application/json": {"model": AnalysisStatus}}},
              200: {"description": "Already analysed and unchanged since: the report, nothing re-run"},
              422: {"description": "Too little to analyse (fewer learner turns than the minimum)"},
              429: {"description": "Monthly quota reached; nothing started"},
          })
def start_analysis(sessionId: str) -> tuple[AnalysisStatus, int]:  # noqa: N803 - the path parameter's public name
    status, started = analyses().start(owner_of(app), sessionId)
    logger.info("Analysis requested", extra={"session_id": sessionId, "started": started, "status": status.status})
    return status, 200 if status.status == "completed" else 202


@app.get("/sessions/<sessionId>/analysis", summary="The analysis status and, when done, the report",
         tags=["Analysis"])
def get_analysis(sessionId: str) -> AnalysisStatus:  # noqa: N803
    return analyses().get(owner_of(app), sessionId)


@app.get("/progress", summary="Scores across the learner's latest sessions (trend)", tags=["Analysis"])
def progress(
    limit: Annotated[int, Query(ge=1, le=50, description="How many of the newest sessions to look at")] = 10,
) -> Progress:
    return analyses().progress(owner_of(app), limit=limit)


handler = rest_handler(app)
