import { describe, expect, it } from "vitest";
import { z } from "zod";
import { bodyParser } from "../../src/store/parsed.ts";

const Body = z.object({ kernel: z.string(), args: z.array(z.string()).default([]) });

describe("bodyParser", () => {
  it("validates a text once and hands every caller the same deeply frozen result", () => {
    const parse = bodyParser(Body);
    const a = parse('{"kernel":"/k"}');
    expect(a).toEqual({ kernel: "/k", args: [] });
    expect(parse('{"kernel":"/k"}')).toBe(a);
    expect(() => {
      (a.args as string[]).push("x");
    }).toThrow(TypeError);
    expect(parse('{"kernel":"/k"}').args).toEqual([]);
  });

  it("a body the schema refuses is refused on every read, never remembered", () => {
    const parse = bodyParser(Body);
    expect(() => parse('{"kernel":1}')).toThrow();
    expect(() => parse('{"kernel":1}')).toThrow();
  });

  it("remembers at most `max` texts", () => {
    const parse = bodyParser(Body, 2);
    const first = parse('{"kernel":"/1"}');
    parse('{"kernel":"/2"}');
    parse('{"kernel":"/3"}');
    expect(parse('{"kernel":"/1"}')).not.toBe(first);
    expect(parse('{"kernel":"/1"}')).toEqual(first);
  });
});
