/**
 * AWS event stream messages (`application/vnd.amazon.eventstream`), as Amazon Transcribe's streaming
 * WebSocket API frames them - one message per binary WebSocket frame:
 *
 *     total length (4 bytes, big-endian) | headers length (4) | prelude CRC32 (4)
 *     headers | payload | message CRC32 (4)
 *
 * A header is its name's length (1 byte), the name, a type byte and the value; strings (type 7) and
 * byte arrays (type 6) carry a 2-byte length. The CRC is CRC32 (as zlib's).
 */

export type HeaderValue = string | boolean | number | Uint8Array | Date;

export interface EventMessage {
  headers: Record<string, HeaderValue>;
  payload: Uint8Array;
}

export class EventStreamError extends Error {}

const PRELUDE = 12;

let table: Uint32Array | null = null;

export function crc32(bytes: Uint8Array, crc = 0): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

function encodeHeaders(headers: Record<string, string | boolean | Uint8Array>): Uint8Array {
  const parts: number[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const rawName = utf8.encode(name);
    parts.push(rawName.length, ...rawName);
    if (typeof value === "boolean") parts.push(value ? 0 : 1);
    else {
      const raw = typeof value === "string" ? utf8.encode(value) : value;
      parts.push(typeof value === "string" ? 7 : 6, (raw.length >> 8) & 0xff, raw.length & 0xff, ...raw);
    }
  }
  return Uint8Array.from(parts);
}

/** One message (string, boolean and byte-array header values). */
export function encodeMessage(headers: Record<string, string | boolean | Uint8Array>, payload: Uint8Array): Uint8Array {
  const rawHeaders = encodeHeaders(headers);
  const total = PRELUDE + rawHeaders.length + payload.length + 4;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, total);
  view.setUint32(4, rawHeaders.length);
  view.setUint32(8, crc32(out.subarray(0, 8)));
  out.set(rawHeaders, PRELUDE);
  out.set(payload, PRELUDE + rawHeaders.length);
  view.setUint32(total - 4, crc32(out.subarray(0, total - 4)));
  return out;
}

/** Transcribe's audio frame: raw PCM (an empty one ends the stream). */
export function audioEvent(pcm: Uint8Array): Uint8Array {
  return encodeMessage({ ":message-type": "event", ":event-type": "AudioEvent", ":content-type": "application/octet-stream" }, pcm);
}

function decodeHeaders(bytes: Uint8Array): Record<string, HeaderValue> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headers: Record<string, HeaderValue> = {};
  let i = 0;
  try {
    while (i < bytes.length) {
      const size = bytes[i]!;
      const name = fromUtf8.decode(bytes.subarray(i + 1, i + 1 + size));
      i += 1 + size;
      const kind = view.getUint8(i);
      i += 1;
      let value: HeaderValue;
      switch (kind) {
        case 0: case 1: value = kind === 0; break;
        case 2: value = view.getInt8(i); i += 1; break;
        case 3: value = view.getInt16(i); i += 2; break;
        case 4: value = view.getInt32(i); i += 4; break;
        case 5: value = Number(view.getBigInt64(i)); i += 8; break;
        case 6: case 7: {
          const length = view.getUint16(i);
          const raw = bytes.subarray(i + 2, i + 2 + length);
          if (raw.length !== length) throw new EventStreamError("A header value is cut short.");
          value = kind === 7 ? fromUtf8.decode(raw) : raw.slice();
          i += 2 + length;
          break;
        }
        case 8: value = new Date(Number(view.getBigInt64(i))); i += 8; break;
        case 9: value = bytes.slice(i, i + 16); i += 16; break;
        default: throw new EventStreamError(`Unknown header value type ${kind}.`);
      }
      headers[name] = value;
    }
  } catch (error) {
    if (error instanceof EventStreamError) throw error;
    throw new EventStreamError(`The headers are malformed: ${String(error)}`);
  }
  return headers;
}

/** One whole message; throws EventStreamError when it is not one. */
export function decodeMessage(data: Uint8Array): EventMessage {
  if (data.length < PRELUDE + 4) throw new EventStreamError(`A message is at least 16 bytes; this one is ${data.length}.`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const total = view.getUint32(0);
  const headersLength = view.getUint32(4);
  if (crc32(data.subarray(0, 8)) !== view.getUint32(8)) throw new EventStreamError("The prelude checksum does not match.");
  if (total !== data.length) throw new EventStreamError(`The prelude says ${total} bytes; the frame has ${data.length}.`);
  if (PRELUDE + headersLength + 4 > total) throw new EventStreamError("The message's lengths are out of bounds.");
  if (crc32(data.subarray(0, total - 4)) !== view.getUint32(total - 4)) throw new EventStreamError("The message checksum does not match.");
  return {
    headers: decodeHeaders(data.subarray(PRELUDE, PRELUDE + headersLength)),
    payload: data.slice(PRELUDE + headersLength, total - 4),
  };
}
