/**
 * Highest Ignition config spec each Flatcar release line accepts. The Ignition renderer serves the highest
 * spec the machine's release takes that the profile can be expressed in.
 *
 * A spec is accepted from the first Ignition release that marked it stable (Ignition's own spec table:
 * 3.3.0 → Ignition 2.11, 3.4.0 → 2.15, 3.5.0 → 2.20). Each boundary below is the first Flatcar major known
 * to ship such an Ignition; where only a later major could be confirmed, the later one is used, because
 * serving a spec the machine's Ignition does not know fails its first boot, while serving an older one
 * only withholds newer fields.
 *
 * | Flatcar major | release line            | Ignition      | max spec |
 * |---------------|-------------------------|---------------|----------|
 * | < 3185        | LTS-2022 (3033.x)       | 0.3x          | 2.x only (unsupported by Kindling) |
 * | 3185 – 3534   | incl. LTS-2023 (3510.x) | 2.13, 2.14    | 3.3.0    |
 * | 3535 – 4151   | incl. LTS-2024 (4081.x) | 2.15 … 2.19   | 3.4.0    |
 * | ≥ 4152        | stable/beta/alpha       | 2.20 and later | 3.5.0   |
 *
 * Sources: Alpha 3185.0.0 moved to Ignition 2.13 with spec 3 up to 3.3.0 (coreos/butane#335); "starting
 * from Alpha 3535.0.0, Flatcar supports Ignition spec 3.4.0" (flatcar/Flatcar#1000, a maintainer), and a
 * major keeps its Ignition through beta and stable; Stable 3602.2.0 lists Ignition 2.15.0;
 * Beta 3913.1.0 brought 2.18; LTS-2024 (4081) ships 2.19 (DESIGN.md §9). Ignition 2.20.0 (2024-10-22)
 * predates the 4152 branch (majors count days since 2013-07-01: 4152 ≈ November 2024), but no release note
 * naming the first major with 2.20 was found, so that row is the one to re-check.
 */
export type IgnitionSpec = "3.3.0" | "3.4.0" | "3.5.0";

export const IGNITION_SPEC_TABLE: readonly { fromMajor: number; spec: IgnitionSpec | null }[] = [
  { fromMajor: 0, spec: null },
  { fromMajor: 3185, spec: "3.3.0" },
  { fromMajor: 3535, spec: "3.4.0" },
  { fromMajor: 4152, spec: "3.5.0" },
];

/** Max spec for a concrete Flatcar version (`4593.2.5`); null when the release only takes spec 2.x. */
export function maxIgnitionSpec(flatcarVersion: string): IgnitionSpec | null {
  const major = Number.parseInt(flatcarVersion.split(".")[0] ?? "", 10);
  if (!Number.isFinite(major)) throw new Error(`not a Flatcar version: ${flatcarVersion}`);
  let spec: IgnitionSpec | null = null;
  for (const row of IGNITION_SPEC_TABLE) if (major >= row.fromMajor) spec = row.spec;
  return spec;
}
