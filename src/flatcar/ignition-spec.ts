/**
 * Highest Ignition config spec each Flatcar release line accepts (DESIGN.md §9). The Ignition renderer
 * serves the highest spec the machine's release takes that the profile can be expressed in.
 *
 * | Flatcar major | stream            | Ignition | max spec |
 * |---------------|-------------------|----------|----------|
 * | < 3185        | LTS-2022 (3033.x) | 0.x      | 2.x only (unsupported by Kindling) |
 * | 3185 – 3814   | LTS-2023 (3510.x) | 2.14     | 3.3.0    |
 * | 3815 – 4151   | LTS-2024 (4081.x) | 2.19     | 3.4.0    |
 * | ≥ 4152        | stable/beta/alpha | 2.20+    | 3.5.0    |
 */
export type IgnitionSpec = "3.3.0" | "3.4.0" | "3.5.0";

export const IGNITION_SPEC_TABLE: readonly { fromMajor: number; spec: IgnitionSpec | null }[] = [
  { fromMajor: 0, spec: null },
  { fromMajor: 3185, spec: "3.3.0" },
  { fromMajor: 3815, spec: "3.4.0" },
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
