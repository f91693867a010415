import { MACHINE_STATES } from "../../../model/machine.ts";
import type { Profile } from "../../../model/profile.ts";
import { ago } from "../format.ts";
import { Page, Pager, StateBadge, Time } from "../layout.tsx";
import type { Flash } from "../session.ts";
import type { MachineView } from "../view.ts";

export interface MachineFilter {
  state?: string | undefined;
  profile?: string | undefined;
  q?: string | undefined;
  /** The page: an opaque token from a Previous/Next link. */
  cursor?: string | undefined;
}

export const query = (f: MachineFilter) =>
  new URLSearchParams(Object.entries(f).filter((e): e is [string, string] => !!e[1])).toString();

/** The table body, also served alone as the fragment htmx polls: it carries its own polling attributes. */
export const MachineRows = (props: { rows: readonly MachineView[]; filter: MachineFilter }) => (
  // A poll answered 401 means the session ended (logout elsewhere, 12 h idle): reloading leads to the login page.
  <tbody
    id="machine-rows"
    hx-get={`/ui/machines/rows?${query(props.filter)}`}
    hx-trigger="every 2s"
    hx-swap="outerHTML"
    hx-on--response-error="if (event.detail.xhr.status === 401) location.reload()"
  >
    {props.rows.length === 0 && (
      <tr>
        <td colspan={8} class="muted">
          No machines match. Machines appear here when they network-boot.
        </td>
      </tr>
    )}
    {props.rows.map(({ machine: m, profile, via, release }) => (
      <tr data-mac={m.mac}>
        <td class="mono">
          <a href={`/ui/machines/${m.mac}`}>{m.mac}</a>
        </td>
        <td>{m.hostname ?? <span class="muted">—</span>}</td>
        <td class="hide-narrow">{m.arch ?? <span class="muted">?</span>}</td>
        <td>
          {profile ?? <span class="muted">none</span>}
          {via && <span class="muted"> ({via})</span>}
        </td>
        <td class="hide-narrow">{release}</td>
        <td>
          <StateBadge state={m.state} />
        </td>
        <td class="hide-narrow mono">{m.ip ?? ""}</td>
        <td>
          <Time iso={m.lastSeen} text={ago(m.lastSeen)} />
        </td>
      </tr>
    ))}
  </tbody>
);

export const MachinesPage = (props: {
  csrf: string;
  flash?: Flash | undefined;
  rows: readonly MachineView[];
  filter: MachineFilter;
  profiles: readonly Profile[];
  counts: Record<string, number>;
  prev?: string | undefined;
  next?: string | undefined;
}) => (
  <Page title="Machines" current="/ui/machines" csrf={props.csrf} flash={props.flash}>
    <p class="muted">{MACHINE_STATES.map((s) => `${s}: ${props.counts[s] ?? 0}`).join(" · ")}</p>
    {/* biome-ignore lint/a11y/useSemanticElements: <search> is not in hono/jsx types yet; role="search" gives the same landmark */}
    <form class="filters" method="get" action="/ui/machines" role="search">
      <label>
        Search MAC or hostname
        <input type="search" name="q" value={props.filter.q ?? ""} />
      </label>
      <label>
        State
        <select name="state">
          <option value="">any</option>
          {MACHINE_STATES.map((s) => (
            <option value={s} selected={props.filter.state === s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      <label>
        Profile
        <select name="profile">
          <option value="">any</option>
          {props.profiles.map((p) => (
            <option value={p.name} selected={props.filter.profile === p.name}>
              {p.name}
            </option>
          ))}
        </select>
      </label>
      <button type="submit">Filter</button>
    </form>
    <div class="scroll">
      <table class="cards">
        <thead>
          <tr>
            <th>MAC</th>
            <th>Hostname</th>
            <th class="hide-narrow">Arch</th>
            <th>Profile</th>
            <th class="hide-narrow">Channel / version</th>
            <th>State</th>
            <th class="hide-narrow">IP</th>
            <th>Last seen</th>
          </tr>
        </thead>
        <MachineRows rows={props.rows} filter={props.filter} />
      </table>
    </div>
    <Pager prev={props.prev} next={props.next} />
  </Page>
);
