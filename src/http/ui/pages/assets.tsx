import { formatBytes } from "../../../flatcar/progress.ts";
import type { MirrorStatus } from "../../../flatcar/status.ts";
import type { Progress } from "../../../flatcar/sync.ts";
import { ago } from "../format.ts";
import { Csrf, Page, Time } from "../layout.tsx";
import type { Flash } from "../session.ts";

/** Mirror status; polled by htmx while anything syncs. */
export const MirrorSection = (props: { status: MirrorStatus; progress: ReadonlyMap<string, Progress> }) => {
  const { releases, syncing, failed } = props.status;
  return (
    <div
      id="mirror"
      {...(syncing.length > 0
        ? { "hx-get": "/ui/assets/status", "hx-trigger": "every 1s", "hx-swap": "outerHTML" }
        : {})}
    >
      <h2>Syncing</h2>
      {syncing.length === 0 ? (
        <p class="muted">Nothing is syncing.</p>
      ) : (
        <ul>
          {syncing.map((s) => {
            const p = props.progress.get(`${s.channel}/${s.board}/${s.version}`);
            return (
              <li>
                {s.channel} {s.board} {s.version}:{" "}
                {p ? (
                  <>
                    {p.file} {formatBytes(p.bytes)}
                    {p.total ? ` of ${formatBytes(p.total)}` : ""}{" "}
                    {p.total ? <progress max={p.total} value={p.bytes} /> : null}
                  </>
                ) : (
                  "downloading and verifying"
                )}
              </li>
            );
          })}
        </ul>
      )}
      {failed.length > 0 && (
        <>
          <h2>Recent failures</h2>
          <ul>
            {failed.map((f) => (
              <li class="flash-error">
                {f.channel} {f.board} {f.version}: {f.reason} (<Time iso={f.at} text={ago(f.at)} />)
              </li>
            ))}
          </ul>
        </>
      )}
      <h2>Mirrored releases</h2>
      {releases.length === 0 ? (
        <p class="muted">The mirror is empty. Assigning a Flatcar profile starts its sync.</p>
      ) : (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th>Channel</th>
                <th>Board</th>
                <th>Version</th>
                <th>Size</th>
                <th class="hide-narrow">Files</th>
                <th>Verified</th>
              </tr>
            </thead>
            <tbody>
              {releases.map((r) => (
                <tr>
                  <td>{r.channel}</td>
                  <td>{r.board}</td>
                  <td>
                    {r.version}
                    {r.current && <strong> (current)</strong>}
                  </td>
                  <td>{formatBytes(r.bytes)}</td>
                  <td class="hide-narrow">{r.files.length}</td>
                  <td>
                    <Time iso={r.verifiedAt} text={ago(r.verifiedAt)} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
};

export const AssetsPage = (props: {
  csrf: string;
  flash?: Flash | undefined;
  status: MirrorStatus;
  progress: ReadonlyMap<string, Progress>;
}) => (
  <Page title="Assets" current="/ui/assets" csrf={props.csrf} flash={props.flash}>
    <form class="filters" method="post" action="/ui/assets/sync">
      <Csrf token={props.csrf} />
      <label>
        Channel
        <input name="channel" value="stable" required size={8} />
      </label>
      <label>
        Version
        <input name="version" value="current" required size={10} />
      </label>
      <label>
        Arch
        <select name="arch">
          <option value="amd64">amd64</option>
          <option value="arm64">arm64</option>
        </select>
      </label>
      <button type="submit">Sync release</button>
    </form>
    <MirrorSection status={props.status} progress={props.progress} />
  </Page>
);
