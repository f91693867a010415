import type { Group } from "../model/group.ts";

/** What a boot request says about the machine, plus the machine's own labels: the keys group selectors test. */
export type Labels = Record<string, string>;

/** A selector matches when every key it names is present with the value (or one of the values) it lists. */
export function selectorMatches(selector: Group["selector"], labels: Labels): boolean {
  return Object.entries(selector).every(([key, want]) => {
    const have = labels[key];
    if (have === undefined) return false;
    return Array.isArray(want) ? want.includes(have) : want === have;
  });
}

/**
 * The group for a machine with no explicit profile: among matching groups, the most specific (most selector
 * keys) wins; ties go to the name that sorts first, so the answer never depends on insertion order.
 */
export function selectGroup(groups: readonly Group[], labels: Labels): Group | undefined {
  return groups
    .filter((g) => selectorMatches(g.selector, labels))
    .sort(
      (a, b) =>
        Object.keys(b.selector).length - Object.keys(a.selector).length ||
        (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    )[0];
}

export type ProfileSource = "machine" | "group" | "default";

/** Which profile a machine boots, and why. */
export function chooseProfile(input: {
  machineProfile: string | null | undefined;
  groups: readonly Group[];
  labels: Labels;
  defaultProfile: string | undefined;
}): { profile: string; source: ProfileSource; group?: Group } | undefined {
  if (input.machineProfile) return { profile: input.machineProfile, source: "machine" };
  const group = selectGroup(input.groups, input.labels);
  if (group) return { profile: group.profile, source: "group", group };
  if (input.defaultProfile) return { profile: input.defaultProfile, source: "default" };
  return undefined;
}
