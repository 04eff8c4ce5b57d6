"""Transcribe's "Transcribe Job State Change" events (default bus) -> the waiting transcription execution.

The EventBridge rule passes only our jobs' COMPLETED and FAILED events. The handler finds the task
token the state machine stored under the job's name and calls ``SendTaskSuccess {"status": ...}``;
a repeated or late event (token already used, timed out, execution ended) is logged and ignored -
except a job that completed after its workflow ended: that one is metered and cleaned up here.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.core import clients
from parley.core.config import TranscriptionStepsEnv
from parley.core.observability import logger, tracer
from parley.data.store import Store
from parley.speech.transcription.job_events import JobEvents
from parley.speech.transcription.steps import steps_from

ENV = TranscriptionStepsEnv.load(os.environ)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    events = JobEvents(Store(clients.table(ENV.table_name)), clients.client("stepfunctions"), stage=ENV.stage,
                       steps=steps_from(ENV))
    return events.handle(event).model_dump(by_alias=True)
