"""Speech: Polly voices (text to speech) and transcription (speech to text, batch and streaming)."""
