import type { Machine } from "../../../model/machine.ts";
import { type BmcRecord, POWER_ACTIONS } from "../../../model/power.ts";
import { ago } from "../format.ts";
import { Csrf, Page, StateBadge, Time } from "../layout.tsx";
import { MASK } from "../mask.ts";
import type { Flash } from "../session.ts";

export interface PowerRow {
  bmc: BmcRecord;
  machine: Machine | undefined;
}

const ACTION_LABELS: Record<(typeof POWER_ACTIONS)[number], string> = {
  status: "Ask state",
  on: "Power on",
  off: "Power off (hard)",
  "soft-off": "Shut down (soft)",
  cycle: "Power cycle",
  reset: "Reset",
  "pxe-once": "Next boot: network",
};

/** The power state as a word in a badge; an error from the last attempt beside it. */
export const PowerBadge = (props: { power: BmcRecord["power"] }) => (
  <span>
    <span class={`power power-${props.power.state}`}>{props.power.state}</span>{" "}
    <span class="muted">
      <Time iso={props.power.checkedAt} text={props.power.checkedAt ? ago(props.power.checkedAt) : "never asked"} />
    </span>
    {props.power.error && (
      <div class="muted" role="note">
        last error: {props.power.error}
      </div>
    )}
  </span>
);

const ActionButtons = (props: { name?: string }) => (
  <div class="actions">
    {POWER_ACTIONS.map((a) => (
      <button class={a === "off" ? "danger" : "secondary"} type="submit" name={props.name ?? "action"} value={a}>
        {ACTION_LABELS[a]}
      </button>
    ))}
    <button type="submit" name={props.name ?? "action"} value="reinstall">
      Reinstall + power cycle
    </button>
  </div>
);

export const PowerRows = (props: { rows: readonly PowerRow[] }) => (
  <tbody id="power-rows" hx-get="/ui/power/rows" hx-trigger="every 10s" hx-swap="outerHTML">
    {props.rows.map(({ bmc, machine }) => (
      <tr>
        <td>
          <input type="checkbox" name="mac" value={bmc.mac} aria-label={`select ${bmc.mac}`} />
        </td>
        <td class="mono">
          <a href={`/ui/machines/${bmc.mac}`}>{bmc.mac}</a>
        </td>
        <td>{machine?.hostname ?? "—"}</td>
        <td>{machine ? <StateBadge state={machine.state} /> : "—"}</td>
        <td class="mono">
          {bmc.driver} {bmc.address}:{bmc.port}
        </td>
        <td>
          <PowerBadge power={bmc.power} />
        </td>
      </tr>
    ))}
  </tbody>
);

/** Machines with a BMC: their power state (the poller's or the last action's) and bulk actions. */
export const PowerPage = (props: {
  csrf: string;
  flash?: Flash | undefined;
  rows: readonly PowerRow[];
  next?: string | undefined;
}) => (
  <Page title="Power" current="/ui/power" csrf={props.csrf} flash={props.flash}>
    {props.rows.length === 0 ? (
      <p class="muted">No machine has a BMC yet: set one on a machine's page, with the CLI or the API.</p>
    ) : (
      <form method="post" action="/ui/power/bulk">
        <Csrf token={props.csrf} />
        <table>
          <thead>
            <tr>
              <th />
              <th>MAC</th>
              <th>Hostname</th>
              <th>State</th>
              <th>BMC</th>
              <th>Power</th>
            </tr>
          </thead>
          <PowerRows rows={props.rows} />
        </table>
        <p class="muted">For the ticked machines, each through its own BMC (one call at a time per BMC):</p>
        <ActionButtons />
      </form>
    )}
    {props.next && (
      <nav class="pager">
        <span />
        <a href={props.next}>Next →</a>
      </nav>
    )}
  </Page>
);

/** The power part of a machine's page: its BMC (password masked), state, actions, and the BMC form. */
export const MachinePower = (props: { csrf: string; mac: string; bmc: BmcRecord | undefined }) => {
  const { bmc, mac } = props;
  return (
    <div id="machine-power">
      {bmc ? (
        <>
          <dl class="facts">
            <dt>BMC</dt>
            <dd class="mono">
              {bmc.driver} {bmc.username}@{bmc.address}:{bmc.port}
            </dd>
            <dt>Password</dt>
            <dd class="mono">{MASK}</dd>
            <dt>Power</dt>
            <dd>
              <PowerBadge power={bmc.power} />
            </dd>
          </dl>
          <form method="post" action={`/ui/machines/${mac}/power`}>
            <Csrf token={props.csrf} />
            <ActionButtons />
          </form>
          <form method="post" action={`/ui/machines/${mac}/bmc/clear`}>
            <Csrf token={props.csrf} />
            <button class="secondary" type="submit">
              Remove BMC
            </button>
          </form>
        </>
      ) : (
        <p class="muted">No BMC: Kindling cannot power this machine.</p>
      )}
      <details>
        <summary>{bmc ? "Replace the BMC…" : "Set a BMC…"}</summary>
        <form method="post" action={`/ui/machines/${mac}/bmc`} class="stack">
          <Csrf token={props.csrf} />
          <label>
            Driver{" "}
            <select name="driver">
              <option value="ipmi" selected={bmc?.driver !== "redfish"}>
                IPMI (ipmitool lanplus)
              </option>
              <option value="redfish" selected={bmc?.driver === "redfish"}>
                Redfish (HTTPS)
              </option>
            </select>
          </label>
          <label>
            Address <input name="address" required value={bmc?.address ?? ""} />
          </label>
          <label>
            Port <input name="port" inputmode="numeric" placeholder="623 / 443" value={bmc ? String(bmc.port) : ""} />
          </label>
          <label>
            Username <input name="username" required autocomplete="off" value={bmc?.username ?? ""} />
          </label>
          <label>
            Password <input name="password" type="password" required autocomplete="new-password" />
          </label>
          <label>
            IPMI cipher suite <input name="cipherSuite" inputmode="numeric" placeholder="ask the BMC" />
          </label>
          <label>
            Redfish system id <input name="systemId" placeholder="the only one" />
          </label>
          <label>
            Redfish CA certificate (PEM) <textarea name="caCert" rows={3} />
          </label>
          <label>
            <input type="checkbox" name="insecure" value="true" /> Redfish: accept any TLS certificate
          </label>
          <button type="submit">Save BMC</button>
        </form>
      </details>
    </div>
  );
};
