"""The transcription workflow's named errors (the ASL catches them by these names), and the
reasons a person reads when a transcription fails.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from parley.core.errors import ServiceUnavailable
from parley.core.observability import logger
from parley.data.store import error_code


class UploadRejected(Exception):
    """The uploaded object is empty, too large or not audio in the declared format."""


class TranscriptionAlreadyStarted(Exception):
    """A second start for the same transcription (e.g. a repeated S3 event): nothing to do."""


class TranscriptionNotFound(Exception):
    """The workflow was started for a transcription that does not exist."""


class TranscriptMissing(Exception):
    """Transcribe reported COMPLETED but its output file is not where we asked it to be."""


class TranscriptMalformed(Exception):
    """The output file is not Transcribe's documented JSON."""


class TranscriptTooLarge(Exception):
    """The transcript does not fit one table item."""


class TranscriptionNotRunning(Exception):
    """Collect found the transcription neither running nor completed (it was resolved as failed or
    removed meanwhile): the result is not saved over it."""


FAILURE_MESSAGES: dict[str, str] = {
    "TranscriptionJobFailed": "Transcribe could not process the audio{detail}. Check that the recording "
                              "is not silent, truncated or corrupted, then send it again.",
    "TranscriptionTimedOut": "The transcription did not finish in time. Try a shorter recording, or retry later.",
    "TranscriptionNotFound": "The transcription record was missing; request a new upload URL and upload again.",
    "TranscriptMissing": "Transcribe finished but produced no transcript; send the recording again.",
    "TranscriptMalformed": "Transcribe's result could not be read; send the recording again.",
    "TranscriptTooLarge": "The recording is too long for one transcript; split it into parts of a few minutes.",
    "TranscriptionInterrupted": "The transcription stopped before it finished; send the recording again.",
    "UploadNotReceived": "No recording arrived before the upload URL expired; request a new upload URL and upload "
                         "again.",
}
INTERNAL_MESSAGE = "Something went wrong on our side while transcribing; send the recording again."
# S3 answers that mean "try again" (botocore retried them already): raised as ServiceUnavailable.
TRANSIENT_S3_CODES = frozenset({"InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout", "500", "503"})


def transient(exc: Exception, what: str) -> ServiceUnavailable:
    """A dependency's failure that a retry can cure, as the named error the workflow retries."""
    logger.warning("Dependency unavailable", extra={"operation": what, "error": type(exc).__name__,
                                                    "code": error_code(exc) if isinstance(exc, ClientError) else ""})
    return ServiceUnavailable(f"{what} failed: {type(exc).__name__}; retry.")
