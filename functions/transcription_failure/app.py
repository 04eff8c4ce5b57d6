"""The transcription workflow's failure task: record a reason a person can act on.

Raises named exceptions (parley.transcription) that statemachines/transcription.asl.json catches.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley import clients
from parley.config import TranscriptionStepsEnv
from parley.observability import logger, tracer
from parley.store import Store
from parley.transcription import TranscriptionSteps
from parley.usage import publisher_from

ENV = TranscriptionStepsEnv.load(os.environ)


def steps() -> TranscriptionSteps:
    return TranscriptionSteps(Store(clients.table(ENV.table_name)), clients.client("s3"), clients.client("transcribe"),
                              bucket=ENV.audio_bucket_name, stage=ENV.stage, retention_days=ENV.data_retention_days,
                              publisher=publisher_from(ENV))


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return steps().record_failure(event)
