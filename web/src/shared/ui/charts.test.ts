import { describe, expect, it } from "vitest";
import { timeScale } from "./charts";

describe("the progress chart's time axis", () => {
  it("places sessions by when they were, so a long gap looks long", () => {
    const day = 86_400_000;
    expect(timeScale([0, day, 10 * day])).toEqual([0, 0.1, 1]);
  });
  it("spreads sessions evenly when they share one moment, and centres a single one", () => {
    expect(timeScale([5, 5, 5])).toEqual([0, 0.5, 1]);
    expect(timeScale([5])).toEqual([0.5]);
    expect(timeScale([])).toEqual([]);
  });
});
