/**
 * Push-to-talk recording with the browser's MediaRecorder, in a format the API accepts: WebM/Opus
 * in Chromium and Firefox, MP4/AAC in Safari (the API checks the audio by its content, and takes
 * webm, ogg, wav, mp3 and m4a).
 */

export type AudioFormat = "webm" | "ogg" | "m4a";

const CANDIDATES: [string, AudioFormat][] = [
  ["audio/webm;codecs=opus", "webm"],
  ["audio/webm", "webm"],
  ["audio/mp4", "m4a"],
  ["audio/ogg;codecs=opus", "ogg"],
];

/** Largest recording sent inline (the API's limit is 4 MB of audio). */
export const MAX_BYTES = 4 * 1024 * 1024;
/** A push-to-talk turn stops itself after this long. */
export const MAX_SECONDS = 120;

export function pickFormat(isSupported: (type: string) => boolean): { mimeType: string; format: AudioFormat } | null {
  for (const [mimeType, format] of CANDIDATES) if (isSupported(mimeType)) return { mimeType, format };
  return null;
}

export function recordingSupported(): boolean {
  return typeof MediaRecorder !== "undefined" && !!navigator.mediaDevices?.getUserMedia;
}

export interface Recording {
  blob: Blob;
  format: AudioFormat;
  seconds: number;
}

export class Recorder {
  private recorder: MediaRecorder | null = null;
  private stream: MediaStream | null = null;
  private chunks: Blob[] = [];
  private startedAt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private done: ((r: Recording) => void) | null = null;
  private format: AudioFormat = "webm";

  get recording(): boolean {
    return this.recorder?.state === "recording";
  }

  /** The microphone while recording (the streaming transcription listens to it too). */
  get mediaStream(): MediaStream | null {
    return this.stream;
  }

  /** Ask for the microphone and start; `onAutoStop` runs if the turn hits MAX_SECONDS. */
  async start(onAutoStop: () => void): Promise<void> {
    const picked = pickFormat((t) => MediaRecorder.isTypeSupported(t));
    if (!picked) throw new Error("unsupported");
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    this.format = picked.format;
    this.chunks = [];
    this.recorder = new MediaRecorder(this.stream, { mimeType: picked.mimeType, audioBitsPerSecond: 32_000 });
    this.recorder.ondataavailable = (e) => {
      if (e.data.size) this.chunks.push(e.data);
    };
    this.recorder.onstop = () => {
      const blob = new Blob(this.chunks, { type: this.recorder?.mimeType || picked.mimeType });
      this.release();
      this.done?.({ blob, format: this.format, seconds: (performance.now() - this.startedAt) / 1000 });
      this.done = null;
    };
    this.startedAt = performance.now();
    this.recorder.start(250);
    this.timer = setTimeout(onAutoStop, MAX_SECONDS * 1000);
  }

  stop(): Promise<Recording> {
    return new Promise((resolve, reject) => {
      if (!this.recorder || this.recorder.state !== "recording") {
        reject(new Error("not recording"));
        return;
      }
      this.done = resolve;
      this.recorder.stop();
    });
  }

  /** Stop without keeping anything (leaving the page). */
  cancel(): void {
    this.done = null;
    if (this.recorder?.state === "recording") this.recorder.stop();
    this.release();
  }

  private release(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
  }
}

export async function toBase64(blob: Blob): Promise<string> {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
