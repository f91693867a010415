import { createSocket } from "node:dgram";
import { describe, expect, it } from "vitest";
import { literalLookup } from "../../src/net/literal-lookup.ts";

describe("literalLookup", () => {
  it("answers IPv4 and IPv6 literals before returning", () => {
    const answers: unknown[] = [];
    literalLookup("10.1.2.3", { family: 4 }, (err, address, family) => answers.push([err, address, family]));
    literalLookup("::1", { family: 6 }, (err, address, family) => answers.push([err, address, family]));
    expect(answers).toEqual([
      [null, "10.1.2.3", 4],
      [null, "::1", 6],
    ]);
  });

  it("leaves names to the system resolver", async () => {
    const address = await new Promise<string>((res, rej) =>
      literalLookup("localhost", { family: 4 }, (err, a) => (err ? rej(err) : res(a))),
    );
    expect(address).toBe("127.0.0.1");
  });

  it("carries a real datagram when a socket uses it", async () => {
    const rx = createSocket("udp4");
    const tx = createSocket({ type: "udp4", lookup: literalLookup });
    await new Promise<void>((r) => rx.bind(0, "127.0.0.1", r));
    const got = new Promise<string>((r) => rx.once("message", (m) => r(m.toString())));
    tx.send("ping", rx.address().port, "127.0.0.1");
    expect(await got).toBe("ping");
    rx.close();
    tx.close();
  });
});
