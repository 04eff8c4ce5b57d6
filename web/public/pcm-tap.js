// Parley's AudioWorklet for streaming speech-to-text: hands the microphone's samples to the page
// in batches of at least 2,048 (the page resamples them to 16 kHz PCM).
class PcmTap extends AudioWorkletProcessor {
  constructor() {
    super();
    this.chunks = [];
    this.size = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      this.chunks.push(channel.slice());
      this.size += channel.length;
      if (this.size >= 2048) {
        const out = new Float32Array(this.size);
        let at = 0;
        for (const c of this.chunks) {
          out.set(c, at);
          at += c.length;
        }
        this.port.postMessage(out, [out.buffer]);
        this.chunks = [];
        this.size = 0;
      }
    }
    return true;
  }
}

registerProcessor("parley-pcm-tap", PcmTap);
