import { describe, expect, it } from "vitest";
import { applyAccepted, place, segments, utf16Index, type Correction } from "./highlights";

function correction(text: string, original: string, replacement: string, from = 0): Correction {
  const utf16Offset = text.indexOf(original, from);
  const offset = [...text.slice(0, utf16Offset)].length;
  return {
    offset, length: [...original].length, utf16Offset, utf16Length: original.length, original, replacement,
    category: "spelling", explanation: "",
  };
}

describe("placing corrections", () => {
  const text = "🎉 정부는 예산을 편성할수있다. The goverment said teh end.";
  const spacing = correction(text, "할수있", "할 수 있");
  const govt = correction(text, "goverment", "government");
  const teh = correction(text, "teh", "the");

  it("uses UTF-16 offsets, which differ from code points after an emoji", () => {
    expect(spacing.utf16Offset).toBe(spacing.offset + 1);
    const placed = place(text, [spacing, govt, teh]);
    expect(placed.map((p) => text.slice(p.start, p.end))).toEqual(["할수있", "goverment", "teh"]);
  });

  it("falls back to the code-point offset when the UTF-16 one does not hold the original", () => {
    const stale = { ...govt, utf16Offset: govt.offset, utf16Length: 0 };
    const [placed] = place(text, [stale]);
    expect(text.slice(placed!.start, placed!.end)).toBe("goverment");
  });

  it("leaves out corrections that fit nowhere or overlap an earlier one", () => {
    const nowhere = { ...teh, original: "xyz", offset: 3, utf16Offset: 3 };
    const overlapping = correction(text, "govern", "gov");
    const placed = place(text, [govt, nowhere, overlapping]);
    expect(placed.map((p) => p.index)).toEqual([0]);
  });

  it("cuts the text into runs and highlights that join back to the text", () => {
    const placed = place(text, [teh, spacing]);
    const parts = segments(text, placed, ["pending", "accepted"]);
    expect(parts.map((s) => (s.kind === "text" ? s.text : s.placed.correction.original)).join("")).toBe(text);
    expect(parts.filter((s) => s.kind === "correction").map((s) => s.kind === "correction" && s.decision))
      .toEqual(["accepted", "pending"]);
  });

  it("applies only the accepted corrections, exactly where they are", () => {
    const placed = place(text, [spacing, govt, teh]);
    expect(applyAccepted(text, placed, ["pending", "accepted", "rejected"]))
      .toBe("🎉 정부는 예산을 편성할수있다. The government said teh end.");
    expect(applyAccepted(text, placed, ["accepted", "accepted", "accepted"]))
      .toBe("🎉 정부는 예산을 편성할 수 있다. The government said the end.");
    expect(applyAccepted(text, placed, [])).toBe(text);
  });

  it("counts code points as the server does", () => {
    expect(utf16Index("a🎉b", 2)).toBe(3);
    expect(utf16Index("a🎉b", 3)).toBe(4);
    expect(utf16Index("ab", 5)).toBe(-1);
  });
});
