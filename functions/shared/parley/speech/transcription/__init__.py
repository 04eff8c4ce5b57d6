"""Batch speech-to-text as a workflow, and streaming speech-to-text.

Two ways in, one workflow (statemachines/transcription.asl.json):

- ``POST /transcriptions`` (audio base64 in JSON): the API checks the audio, stores it under
  ``audio/<owner>/...``, saves the transcription (status ``queued``) and starts the execution named
  after the transcription id (a repeated start is refused by Step Functions, not run twice).
- ``POST /transcriptions/upload-url``: the API saves the transcription (``queued``) and returns a
  presigned POST for ``uploads/<owner>/<id>.<format>``; the object's arrival (S3 -> EventBridge rule)
  starts the same state machine with the S3 event, and ``prepare`` checks that upload.

Modules, by topic: ``service`` (the two ways in, and status reads), ``steps`` (the workflow's tasks),
``metering`` (what a job is billed, published once), ``cleanup`` (jobs that outlive their workflow),
``job_events`` (Transcribe's job events resume the waiting execution), ``stream_url`` (streaming),
``audio``, ``objects``, ``transcript``, ``models`` and ``errors``.
"""
