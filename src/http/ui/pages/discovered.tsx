import type { Machine } from "../../../model/machine.ts";
import type { Profile } from "../../../model/profile.ts";
import { ago } from "../format.ts";
import { Csrf, Page, Pager, Time } from "../layout.tsx";
import type { Flash } from "../session.ts";
import { AssignForm, ProfileSelect } from "./assign.tsx";

/** Machines that booted without a profile, newest first, a page at a time: assign one at a time, or tick many and assign them together. */
export const DiscoveredPage = (props: {
  csrf: string;
  flash?: Flash | undefined;
  machines: readonly Machine[];
  profiles: readonly Profile[];
  prev?: string | undefined;
  next?: string | undefined;
}) => (
  <Page title="Discovered" current="/ui/discovered" csrf={props.csrf} flash={props.flash}>
    {props.machines.length === 0 ? (
      <p class="muted">No machine is waiting for a profile.</p>
    ) : (
      <>
        <form id="bulk" class="filters" method="post" action="/ui/discovered/assign">
          <Csrf token={props.csrf} />
          <ProfileSelect profiles={props.profiles} label="Profile for the ticked machines" />
          <button type="submit">Assign selected</button>
        </form>
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th>
                  <span class="muted">Select</span>
                </th>
                <th>MAC</th>
                <th class="hide-narrow">Arch</th>
                <th>First seen</th>
                <th>Assign</th>
              </tr>
            </thead>
            <tbody>
              {props.machines.map((m) => (
                <tr data-mac={m.mac}>
                  <td>
                    <input type="checkbox" name="mac" value={m.mac} form="bulk" aria-label={`select ${m.mac}`} />
                  </td>
                  <td class="mono">
                    <a href={`/ui/machines/${m.mac}`}>{m.mac}</a>
                  </td>
                  <td class="hide-narrow">{m.arch ?? "?"}</td>
                  <td>
                    <Time iso={m.firstSeen ?? m.createdAt} text={ago(m.firstSeen ?? m.createdAt)} />
                  </td>
                  <td>
                    <AssignForm
                      mac={m.mac}
                      csrf={props.csrf}
                      profiles={props.profiles}
                      profile={null}
                      hostname={m.hostname}
                      back="/ui/discovered"
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </>
    )}
    <Pager prev={props.prev} next={props.next} />
  </Page>
);
