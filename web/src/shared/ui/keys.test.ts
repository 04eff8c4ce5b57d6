import { describe, expect, it } from "vitest";
import { holdImeEnter, sendsOnEnter } from "./keys";

const key = (over: Partial<{ key: string; shiftKey: boolean; keyCode: number; isComposing: boolean }> = {}) => ({
  key: over.key ?? "Enter", shiftKey: over.shiftKey ?? false, keyCode: over.keyCode ?? 13,
  nativeEvent: { isComposing: over.isComposing ?? false },
});

describe("Enter in an answer box", () => {
  it("sends", () => expect(sendsOnEnter(key())).toBe(true));
  it("is a new line with Shift", () => expect(sendsOnEnter(key({ shiftKey: true }))).toBe(false));
  it("only finishes a Korean syllable while the IME composes (Chromium, Firefox)", () =>
    expect(sendsOnEnter(key({ isComposing: true, keyCode: 229 }))).toBe(false));
  it("only finishes a Korean syllable in Safari (keyCode 229 after compositionend)", () =>
    expect(sendsOnEnter(key({ keyCode: 229 }))).toBe(false));
  it("ignores other keys", () => expect(sendsOnEnter(key({ key: "a", keyCode: 65 }))).toBe(false));
});

describe("Enter in a form field", () => {
  const event = (over: Parameters<typeof key>[0]) => {
    let prevented = false;
    return { ...key(over), target: { tagName: "INPUT" }, preventDefault: () => { prevented = true; }, prevented: () => prevented };
  };
  it("does not submit while an IME composes", () => {
    const e = event({ isComposing: true, keyCode: 229 });
    holdImeEnter(e);
    expect(e.prevented()).toBe(true);
  });
  it("submits otherwise", () => {
    const e = event({});
    holdImeEnter(e);
    expect(e.prevented()).toBe(false);
  });
  it("leaves a text area's Enter alone (a new line, or the end of a syllable)", () => {
    const e = { ...event({ isComposing: true, keyCode: 229 }), target: { tagName: "TEXTAREA" } };
    holdImeEnter(e);
    expect(e.prevented()).toBe(false);
  });
});
