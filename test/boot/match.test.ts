import { describe, expect, it } from "vitest";
import { chooseProfile, selectGroup } from "../../src/boot/match.ts";
import type { Group } from "../../src/model/group.ts";

const g = (name: string, selector: Group["selector"], profile = name): Group => ({
  name,
  selector,
  profile,
  description: "",
  metadata: {},
  labels: {},
  createdAt: "",
  updatedAt: "",
});

describe("selectGroup", () => {
  const groups = [
    g("catch-all", {}),
    g("rack-a", { rack: ["a1", "a2"] }),
    g("rack-a-arm", { rack: ["a1", "a2"], arch: "arm64" }),
    g("zeta-os", { os: "flatcar" }),
    g("alpha-os", { os: "flatcar" }),
  ];
  it.each([
    [{ rack: "a1" }, "rack-a"],
    [{ rack: "a2", arch: "arm64" }, "rack-a-arm"],
    [{ rack: "a3", arch: "arm64" }, "catch-all"],
    [{ os: "flatcar" }, "alpha-os"], // tie on one selector: the name that sorts first
    [{}, "catch-all"],
  ])("%j → %s", (labels, want) => expect(selectGroup(groups, labels)?.name).toBe(want));

  it("is independent of the order groups are listed in", () => {
    const reversed = [...groups].reverse();
    expect(selectGroup(reversed, { os: "flatcar" })?.name).toBe("alpha-os");
  });
  it("matches nothing when a selector key is absent from the labels", () => {
    expect(selectGroup([g("x", { rack: "a1" })], { mac: "52:54:00:00:00:01" })).toBeUndefined();
  });
});

describe("chooseProfile", () => {
  const groups = [g("rack-a", { rack: "a1" }, "flatcar-install")];
  it("prefers the machine's own profile, then a group, then the default", () => {
    expect(chooseProfile({ machineProfile: "p1", groups, labels: { rack: "a1" }, defaultProfile: "d" })).toEqual({
      profile: "p1",
      source: "machine",
    });
    expect(chooseProfile({ machineProfile: null, groups, labels: { rack: "a1" }, defaultProfile: "d" })?.source).toBe(
      "group",
    );
    expect(chooseProfile({ machineProfile: null, groups, labels: {}, defaultProfile: "d" })).toEqual({
      profile: "d",
      source: "default",
    });
    expect(chooseProfile({ machineProfile: null, groups, labels: {}, defaultProfile: undefined })).toBeUndefined();
  });
});
