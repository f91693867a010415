import type { Profile } from "../../../model/profile.ts";
import { Csrf } from "../layout.tsx";

export const ProfileSelect = (props: {
  profiles: readonly Profile[];
  selected?: string | null;
  name?: string;
  form?: string;
  label: string;
}) => (
  <label>
    {props.label}
    <select name={props.name ?? "profile"} form={props.form} required>
      <option value="">choose…</option>
      {props.profiles.map((p) => (
        <option value={p.name} selected={p.name === props.selected}>
          {p.name}
        </option>
      ))}
    </select>
  </label>
);

/** Profile and hostname in one step. */
export const AssignForm = (props: {
  mac: string;
  csrf: string;
  profiles: readonly Profile[];
  profile: string | null;
  hostname: string | null;
  back: string;
}) => (
  <form class="inline" method="post" action={`/ui/machines/${props.mac}/assign`} aria-label={`assign ${props.mac}`}>
    <Csrf token={props.csrf} />
    <input type="hidden" name="back" value={props.back} />
    <ProfileSelect profiles={props.profiles} selected={props.profile} label="Profile" />
    <label>
      Hostname
      <input name="hostname" value={props.hostname ?? ""} placeholder="optional" size={14} />
    </label>
    <button type="submit">Assign</button>
  </form>
);
