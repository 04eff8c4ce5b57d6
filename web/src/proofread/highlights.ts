/**
 * Corrections on the text: where each one sits, and the text with the accepted ones applied.
 *
 * The API gives each correction twice: `offset`/`length` in Unicode code points and
 * `utf16Offset`/`utf16Length` in UTF-16 code units - JavaScript's string indices, which differ
 * from code points after an emoji. The UTF-16 pair is used; a correction whose `original` is not
 * found there (say, an older server) is placed by its code-point offset instead, and one that fits
 * neither, or overlaps one before it, is left out rather than shown in the wrong place.
 */

export interface Correction {
  offset: number;
  length: number;
  utf16Offset: number;
  utf16Length: number;
  original: string;
  replacement: string;
  category: string;
  explanation: string;
}

export type Decision = "pending" | "accepted" | "rejected";

export interface Placed {
  /** index into the corrections as given */
  index: number;
  start: number;
  end: number;
  correction: Correction;
}

export type Segment =
  | { kind: "text"; text: string; start: number }
  | { kind: "correction"; placed: Placed; decision: Decision };

/** UTF-16 index of code point `cp` in `text`. */
export function utf16Index(text: string, cp: number): number {
  let units = 0;
  let points = 0;
  for (const ch of text) {
    if (points === cp) return units;
    units += ch.length;
    points += 1;
  }
  return points === cp ? units : -1;
}

/** The corrections that can be placed on `text`, in order, never overlapping. */
export function place(text: string, corrections: readonly Correction[]): Placed[] {
  const placed: Placed[] = [];
  corrections.forEach((c, index) => {
    let start = c.utf16Offset;
    let end = c.utf16Offset + c.utf16Length;
    if (text.slice(start, end) !== c.original) {
      start = utf16Index(text, c.offset);
      end = start + c.original.length;
      if (start < 0 || text.slice(start, end) !== c.original) return;
    }
    placed.push({ index, start, end, correction: c });
  });
  placed.sort((a, b) => a.start - b.start || a.end - b.end);
  const kept: Placed[] = [];
  for (const p of placed) {
    const last = kept[kept.length - 1];
    if (last && p.start < last.end) continue;
    kept.push(p);
  }
  return kept;
}

/** The text cut into plain runs and corrections, for rendering the highlights. */
export function segments(text: string, placed: readonly Placed[], decisions: readonly Decision[]): Segment[] {
  const out: Segment[] = [];
  let at = 0;
  for (const p of placed) {
    if (p.start > at) out.push({ kind: "text", text: text.slice(at, p.start), start: at });
    out.push({ kind: "correction", placed: p, decision: decisions[p.index] ?? "pending" });
    at = p.end;
  }
  if (at < text.length || out.length === 0) out.push({ kind: "text", text: text.slice(at), start: at });
  return out;
}

/** `text` with the accepted corrections applied (and nothing else changed). */
export function applyAccepted(text: string, placed: readonly Placed[], decisions: readonly Decision[]): string {
  let result = "";
  let at = 0;
  for (const p of placed) {
    if (decisions[p.index] !== "accepted") continue;
    result += text.slice(at, p.start) + p.correction.replacement;
    at = p.end;
  }
  return result + text.slice(at);
}
