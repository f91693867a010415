import type { Profile } from "../../../model/profile.ts";
import { ago, duration } from "../format.ts";
import { Csrf, Page, StateBadge, Time } from "../layout.tsx";
import type { Flash } from "../session.ts";
import type { Step } from "../timeline.ts";
import type { MachineView } from "../view.ts";
import { AssignForm } from "./assign.tsx";

export interface Preview {
  stage: "boot" | "final";
  /** Masked, pretty-printed JSON, or why there is none. */
  text: string;
  ok: boolean;
}

export const MachinePage = (props: {
  csrf: string;
  flash?: Flash | undefined;
  view: MachineView;
  story: readonly Step[];
  previews: readonly Preview[];
  profiles: readonly Profile[];
}) => {
  const { machine: m, profile, via, release } = props.view;
  const total =
    props.story.length > 1 ? Date.parse(props.story.at(-1)!.at) - Date.parse(props.story[0]!.at) : undefined;
  return (
    <Page title={`Machine ${m.hostname ?? m.mac}`} current="/ui/machines" csrf={props.csrf} flash={props.flash}>
      <dl class="facts">
        <dt>MAC</dt>
        <dd class="mono">{m.mac}</dd>
        <dt>State</dt>
        <dd>
          <StateBadge state={m.state} />{" "}
          <span class="muted">
            since <Time iso={m.stateChangedAt} text={ago(m.stateChangedAt)} />
          </span>
        </dd>
        <dt>Hostname</dt>
        <dd>{m.hostname ?? "—"}</dd>
        <dt>Profile</dt>
        <dd>
          {profile ?? "none"}
          {via && ` (from ${via})`}
        </dd>
        <dt>Channel / version</dt>
        <dd>{release}</dd>
        <dt>Arch</dt>
        <dd>{m.arch ?? "?"}</dd>
        <dt>Loader</dt>
        <dd>{m.loader ?? "the profile's (iPXE unless it says GRUB)"}</dd>
        <dt>IP</dt>
        <dd class="mono">{m.ip ?? "—"}</dd>
        <dt>UUID / serial</dt>
        <dd class="mono">
          {m.uuid ?? "—"} / {m.serial ?? "—"}
        </dd>
        <dt>Last seen</dt>
        <dd>
          <Time iso={m.lastSeen} text={ago(m.lastSeen)} />
        </dd>
      </dl>

      <h2>Actions</h2>
      <AssignForm
        mac={m.mac}
        csrf={props.csrf}
        profiles={props.profiles}
        profile={m.profile}
        hostname={m.hostname}
        back={`/ui/machines/${m.mac}`}
      />
      <div class="actions">
        <form method="post" action={`/ui/machines/${m.mac}/reinstall`}>
          <Csrf token={props.csrf} />
          <button type="submit">Reinstall</button>
        </form>
        <details>
          <summary>Forget this machine…</summary>
          <p class="muted">Deletes its record; its next boot finds it as a new, discovered machine.</p>
          <form method="post" action={`/ui/machines/${m.mac}/forget`}>
            <Csrf token={props.csrf} />
            <button class="danger" type="submit">
              Forget {m.mac}
            </button>
          </form>
        </details>
      </div>

      <h2>Power</h2>
      <div hx-get={`/ui/machines/${m.mac}/power`} hx-trigger="load, every 15s" hx-swap="innerHTML" />

      <h2>
        Boot story
        {total !== undefined && <span class="muted"> ({duration(total).slice(1)} from first to last event)</span>}
      </h2>
      {props.story.length === 0 ? (
        <p class="muted">No events yet.</p>
      ) : (
        <ol class="timeline">
          {props.story.map((s) => (
            <li class={s.failed ? "failed" : undefined}>
              <span class="phase">{s.phase}</span> <span class="mono">{s.kind}</span>{" "}
              <Time iso={s.at} text={s.at.replace("T", " ").slice(0, 23)} />{" "}
              <span class="muted">{duration(s.sincePrevMs)}</span>
              {s.summary && <div>{s.summary}</div>}
            </li>
          ))}
        </ol>
      )}

      <h2>Ignition preview (secrets masked)</h2>
      <p class="muted">Data URLs are shown decoded so scripts can be read; serve-time configs carry them encoded.</p>
      {props.previews.map((p) => (
        <section>
          <h3>{p.stage === "boot" ? "Network boot config" : "Installed system config"}</h3>
          {p.ok ? <pre data-stage={p.stage}>{p.text}</pre> : <p class="muted">{p.text}</p>}
        </section>
      ))}
    </Page>
  );
};
