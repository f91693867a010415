import type { Profile } from "../../../model/profile.ts";
import { Page } from "../layout.tsx";
import type { Flash } from "../session.ts";

export interface ProfileRow {
  profile: Profile;
  release: string;
  machines: number;
}

export const ProfilesPage = (props: { csrf: string; flash?: Flash | undefined; rows: readonly ProfileRow[] }) => (
  <Page title="Profiles" current="/ui/profiles" csrf={props.csrf} flash={props.flash}>
    <div class="scroll">
      <table>
        <thead>
          <tr>
            <th>Name</th>
            <th>Boots</th>
            <th>Resolves to</th>
            <th>Mode</th>
            <th>Machines</th>
            <th class="hide-narrow">Description</th>
          </tr>
        </thead>
        <tbody>
          {props.rows.map(({ profile: p, release, machines }) => (
            <tr data-profile={p.name}>
              <td>
                {p.name}
                {p.builtin && <span class="muted"> (built-in)</span>}
              </td>
              <td>{p.flatcar ? `Flatcar ${p.flatcar.arch}` : p.boot ? "raw kernel" : "local disk"}</td>
              <td>{release}</td>
              <td>
                {p.install
                  ? `install to ${p.install.disk ?? "smallest disk"}`
                  : p.flatcar || p.boot
                    ? "live (diskless)"
                    : "—"}
              </td>
              <td>{machines}</td>
              <td class="hide-narrow">{p.description}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  </Page>
);
