/**
 * The Ignition configs Kindling writes itself: the installer that runs in the PXE-booted Flatcar, and the
 * report unit merged into the installed system's config. Spec 3.3.0: the oldest spec-3 Flatcar
 * (3185+) accepts it, and nothing here needs a newer one.
 */
import { upstreamChannel } from "../flatcar/release.ts";

export interface InstallPlan {
  mac: string;
  channel: string;
  version: string;
  board: string;
  /** Mirror URL of the board: flatcar-install reads <base>/<version>/flatcar_production_image.bin.bz2 (+ .sig). */
  baseUrl: string;
  disk: string | undefined;
  oem: string | undefined;
  extraArgs: string[];
  /** Signed URL of the final (installed system's) Ignition config. */
  finalUrl: string;
  /** Signed URL reports are POSTed to; `&kind=<report>` is appended. */
  reportUrl: string;
}

const dataUrl = (text: string) => `data:,${encodeURIComponent(text)}`;

/** Single-quotes a value for the shell: the only character needing care inside '' is ' itself. */
export const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function installScript(p: InstallPlan): string {
  const args = [
    p.disk ? ["-d", p.disk] : ["-s"],
    // flatcar-install knows the upstream channel names (`lts-2024` streams come from channel `lts`).
    ["-C", upstreamChannel(p.channel).channel],
    ["-V", p.version],
    ["-B", p.board],
    ["-b", p.baseUrl],
    ["-i", "/tmp/kindling-final.ign"],
    p.oem ? ["-o", p.oem] : [],
    p.extraArgs,
  ]
    .flat()
    .map(shellQuote)
    .join(" ");
  return `#!/bin/bash
# Written by Kindling for ${p.mac}: install Flatcar ${p.channel} ${p.version} to disk, report, reboot.
set -uo pipefail
REPORT=${shellQuote(p.reportUrl)}
FINAL=${shellQuote(p.finalUrl)}
LOG=/tmp/kindling-install.log

report() { # kind, body on stdin
  curl -fsS --retry 10 --retry-delay 2 --retry-all-errors -X POST -H 'Content-Type: text/plain' --data-binary @- "$REPORT&kind=$1" >/dev/null
}
fail() {
  { echo "$1"; tail -c 4000 "$LOG" 2>/dev/null; } | report install-failed
  exit 1
}

echo "installer booted: $(uname -r)" | report install-started
curl -fsS --retry 10 --retry-delay 2 --retry-all-errors -o /tmp/kindling-final.ign "$FINAL" >"$LOG" 2>&1 || fail "fetching the final Ignition config failed"
if flatcar-install ${args} >"$LOG" 2>&1; then
  tail -c 4000 "$LOG" | report install-done
  systemctl reboot
else
  fail "flatcar-install exited with status $?"
fi
`;
}

export function installerIgnition(p: InstallPlan): Record<string, unknown> {
  return {
    ignition: { version: "3.3.0" },
    storage: {
      files: [
        {
          path: "/opt/kindling/install.sh",
          mode: 0o755,
          overwrite: true,
          contents: { source: dataUrl(installScript(p)) },
        },
      ],
    },
    systemd: {
      units: [
        {
          name: "kindling-install.service",
          enabled: true,
          contents: [
            "[Unit]",
            "Description=Kindling: install Flatcar to disk",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
            "ExecStart=/opt/kindling/install.sh",
            "StandardOutput=journal+console",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
          ].join("\n"),
        },
      ],
    },
  };
}

/**
 * A unit that tells Kindling once that the system is up: `first-boot` from an installed disk, `booted` from a
 * live boot. A stamp file keeps an installed system from reporting on every boot.
 */
export function reportUnit(
  kind: "first-boot" | "booted",
  reportUrl: string,
): { name: string; enabled: boolean; contents: string } {
  const url = `${reportUrl}&kind=${kind}`;
  return {
    name: "kindling-report.service",
    enabled: true,
    contents: [
      "[Unit]",
      `Description=Kindling: report ${kind}`,
      "Wants=network-online.target",
      "After=network-online.target",
      ...(kind === "first-boot" ? ["ConditionPathExists=!/var/lib/kindling/reported"] : []),
      "",
      "[Service]",
      "Type=oneshot",
      // systemd expands % specifiers: the URL's percent-escapes must be doubled.
      `ExecStart=/usr/bin/curl -fsS --retry 10 --retry-delay 3 --retry-all-errors -X POST --data-binary ${kind} "${url.replace(/%/g, "%%")}"`,
      ...(kind === "first-boot"
        ? [
            "ExecStartPost=/usr/bin/mkdir -p /var/lib/kindling",
            "ExecStartPost=/usr/bin/touch /var/lib/kindling/reported",
          ]
        : []),
      "",
      "[Install]",
      "WantedBy=multi-user.target",
      "",
    ].join("\n"),
  };
}

/** Adds the report unit to a rendered config, keeping the operator's own units. */
export function withReportUnit<C extends Record<string, unknown>>(config: C, unit: ReturnType<typeof reportUnit>): C {
  const systemd = (config.systemd as { units?: unknown[] } | undefined) ?? {};
  const units = [...(systemd.units ?? []).filter((u) => (u as { name?: string }).name !== unit.name), unit];
  return { ...config, systemd: { ...systemd, units } };
}
