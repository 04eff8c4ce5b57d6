"""Audio for the emulated speech services: decoding what Transcribe accepts, encoding what Polly answers.

Everything here comes from wheels: PyAV (FFmpeg's demuxers, decoders and resampler) decodes the
containers and codecs Transcribe takes - WebM/Opus, Ogg (Opus or Vorbis), WAV, MP3, MP4/M4A (AAC),
FLAC - and ``lameenc`` (LAME) encodes MP3. PCM here is always signed 16-bit little-endian, mono.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any

RECOGNITION_RATE = 16_000  # what the recogniser's acoustic model was trained on

# PyAV's demuxer names -> the Transcribe MediaFormat values they can be.
_CONTAINERS: dict[str, frozenset[str]] = {
    "matroska,webm": frozenset({"webm"}), "ogg": frozenset({"ogg"}), "wav": frozenset({"wav"}),
    "mp3": frozenset({"mp3"}), "mov,mp4,m4a,3gp,3g2,mj2": frozenset({"mp4", "m4a"}),
    "flac": frozenset({"flac"}), "amr": frozenset({"amr"}),
}


class UndecodableAudio(Exception):
    """The bytes are not audio PyAV can decode (or hold no audio stream)."""


@dataclass(frozen=True)
class Decoded:
    """Decoded audio: mono PCM at ``rate``, and what the file said about itself."""

    pcm: bytes
    rate: int
    source_rate: int
    channels: int
    media_formats: frozenset[str]  # the Transcribe MediaFormat values this container can be

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.rate


def _pcm_of(frames: Any) -> bytes:
    """The bytes of resampled packed s16 mono frames (a plane may carry alignment padding)."""
    return b"".join(bytes(frame.planes[0])[:frame.samples * 2] for frame in frames)


def decode(data: bytes, *, rate: int = RECOGNITION_RATE) -> Decoded:
    """Decode any container/codec FFmpeg knows to mono 16-bit PCM at ``rate``."""
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            streams = [s for s in container.streams if s.type == "audio"]
            if not streams:
                raise UndecodableAudio("The file has no audio stream.")
            stream: Any = streams[0]
            source_rate = int(stream.codec_context.sample_rate or 0)
            channels = int(stream.codec_context.channels or 0)
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            chunks = [_pcm_of(resampler.resample(frame)) for frame in container.decode(stream)]  # type: ignore[arg-type]
            chunks.append(_pcm_of(resampler.resample(None)))
            formats = _CONTAINERS.get(container.format.name, frozenset({container.format.name}))
    except UndecodableAudio:
        raise
    except (av.error.FFmpegError, ValueError, IndexError) as exc:
        raise UndecodableAudio(f"The audio could not be decoded: {exc}") from exc
    pcm = b"".join(chunks)
    if not pcm:
        raise UndecodableAudio("The file holds no audio samples.")
    return Decoded(pcm=pcm, rate=rate, source_rate=source_rate, channels=channels, media_formats=formats)


class Resampler:
    """Mono 16-bit PCM from one rate to another, a chunk at a time (keeps the filter's state)."""

    def __init__(self, source_rate: int, target_rate: int = RECOGNITION_RATE) -> None:
        import av

        self.source_rate = source_rate
        self.target_rate = target_rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=target_rate)
        self._av = av

    def _frame(self, pcm: bytes) -> Any:
        frame = self._av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
        frame.planes[0].update(pcm[: len(pcm) // 2 * 2])
        frame.sample_rate = self.source_rate
        return frame

    def feed(self, pcm: bytes) -> bytes:
        if self.source_rate == self.target_rate:
            return pcm[: len(pcm) // 2 * 2]
        if len(pcm) < 2:
            return b""
        return _pcm_of(self._resampler.resample(self._frame(pcm)))

    def flush(self) -> bytes:
        if self.source_rate == self.target_rate:
            return b""
        return _pcm_of(self._resampler.resample(None))


def resample(pcm: bytes, source_rate: int, target_rate: int) -> bytes:
    """All of ``pcm`` from ``source_rate`` to ``target_rate``."""
    resampler = Resampler(source_rate, target_rate)
    return resampler.feed(pcm) + resampler.flush()


def wav(pcm: bytes, rate: int) -> bytes:
    """A WAV file (RIFF, PCM 16-bit mono) around ``pcm``."""
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, 1, 1, rate,
                         rate * 2, 2, 16, b"data", len(pcm))
    return header + pcm


def mp3(pcm: bytes, rate: int, *, kbps: int = 48) -> bytes:
    """MP3 (MPEG-1/2 Layer III, mono, constant bitrate) encoded by LAME."""
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(1)
    encoder.set_quality(5)  # LAME's -q 5: its recommended speed/quality balance
    return bytes(encoder.encode(pcm) + encoder.flush())


def ogg_vorbis(pcm: bytes, rate: int) -> bytes:
    """Ogg Vorbis by FFmpeg's own Vorbis encoder (the wheel has no libvorbis). That encoder is marked
    experimental (hence ``strict``) and encodes two channels only: the mono voice goes on both."""
    return _encode(pcm, rate, container="ogg", codec="vorbis", codec_rate=rate, layout="stereo",
                   options={"strict": "experimental"})


def webm_opus(pcm: bytes, rate: int) -> bytes:
    """WebM with Opus at 48 kHz - what a browser's MediaRecorder makes (for tests and examples)."""
    return _encode(pcm, rate, container="webm", codec="libopus", codec_rate=48_000)


def _encode(pcm: bytes, rate: int, *, container: str, codec: str, codec_rate: int, layout: str = "mono",
            options: dict[str, str] | None = None) -> bytes:
    import av

    out = io.BytesIO()
    with av.open(out, mode="w", format=container) as muxer:
        stream: Any = muxer.add_stream(codec, rate=codec_rate, options=options or {})
        stream.codec_context.layout = layout
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=codec_rate,
                                      frame_size=stream.codec_context.frame_size or None)
        source = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
        source.planes[0].update(pcm[: len(pcm) // 2 * 2])
        source.sample_rate = rate
        for frame in [*resampler.resample(source), *resampler.resample(None)]:
            for packet in stream.encode(frame):
                muxer.mux(packet)
        for packet in stream.encode(None):
            muxer.mux(packet)
    return out.getvalue()
