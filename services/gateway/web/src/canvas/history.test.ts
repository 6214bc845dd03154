import { describe, expect, it } from "vitest";
import { record, redo, replacePresent, undo, type History } from "./history";

const start = (present: number): History<number> => ({ past: [], present, future: [] });

describe("the undo history", () => {
  it("records a step: the present moves into the past and the future is dropped", () => {
    const h = record({ past: [1], present: 2, future: [3, 4] }, 5);
    expect(h).toEqual({ past: [1, 2], present: 5, future: [] });
  });

  it("keeps the last hundred steps", () => {
    let h = start(0);
    for (let i = 1; i <= 150; i++) h = record(h, i);
    expect(h.past).toHaveLength(100);
    expect(h.past[0]).toBe(50);
    expect(h.past[99]).toBe(149);
    expect(h.present).toBe(150);
  });

  it("replaces the present without a step: past and future stay", () => {
    const h = replacePresent({ past: [1], present: 2, future: [3] }, 9);
    expect(h).toEqual({ past: [1], present: 9, future: [3] });
  });

  it("undoes to the last step and redoes it", () => {
    const h = record(record(start(1), 2), 3);
    const back = undo(h);
    expect(back).toEqual({ past: [1], present: 2, future: [3] });
    expect(undo(back)).toEqual({ past: [], present: 1, future: [2, 3] });
    expect(redo(back)).toEqual(h);
  });

  it("changes nothing when there is nothing to undo or redo", () => {
    const h = start(1);
    expect(undo(h)).toBe(h);
    expect(redo(h)).toBe(h);
  });

  it("a new step after an undo drops what could have been redone", () => {
    const h = record(undo(record(record(start(1), 2), 3)), 7);
    expect(h).toEqual({ past: [1, 2], present: 7, future: [] });
    expect(redo(h)).toBe(h);
  });

  it("undoing everything then redoing everything returns to the same history, whatever the steps", () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let round = 0; round < 50; round++) {
      let h = start(0);
      const steps = Math.floor(random() * 30);
      for (let i = 1; i <= steps; i++) h = random() < 0.2 ? replacePresent(h, -i) : record(h, i);
      let back = h;
      for (let i = 0; i < h.past.length; i++) back = undo(back);
      expect(back.past).toEqual([]);
      expect(back.future).toHaveLength(h.past.length);
      let forth = back;
      for (let i = 0; i < h.past.length; i++) forth = redo(forth);
      expect(forth).toEqual(h);
      // Undo and redo move between snapshots, never lose or invent one.
      expect([back.present, ...back.future]).toEqual([...h.past, h.present]);
    }
  });
});
