import type { Child } from "hono/jsx";
import type { MachineState } from "../../model/machine.ts";
import type { Flash } from "./session.ts";

const NAV = [
  ["/ui/machines", "Machines"],
  ["/ui/discovered", "Discovered"],
  ["/ui/profiles", "Profiles"],
  ["/ui/assets", "Assets"],
  ["/ui/power", "Power"],
] as const;

export function Page(props: {
  title: string;
  current?: string;
  csrf?: string;
  flash?: Flash | undefined;
  children: Child;
}) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · Kindling`}</title>
        <link rel="stylesheet" href="/ui/static/ui.css" />
        <script src="/ui/static/htmx.min.js" defer></script>
      </head>
      <body>
        <header>
          <span class="brand">Kindling</span>
          {props.csrf !== undefined && (
            <>
              <nav style="display:flex;gap:1rem;flex-wrap:wrap">
                {NAV.map(([href, label]) => (
                  <a href={href} aria-current={props.current === href ? "page" : undefined}>
                    {label}
                  </a>
                ))}
              </nav>
              <form method="post" action="/ui/logout">
                <Csrf token={props.csrf} />
                <button class="secondary" type="submit">
                  Log out
                </button>
              </form>
            </>
          )}
        </header>
        <main>
          {props.flash && (
            <div class={`flash flash-${props.flash.kind}`} role={props.flash.kind === "error" ? "alert" : "status"}>
              {props.flash.text}
            </div>
          )}
          <h1>{props.title}</h1>
          {props.children}
        </main>
      </body>
    </html>
  );
}

export const Csrf = (props: { token: string }) => <input type="hidden" name="_csrf" value={props.token} />;

/** The state as a word (readable without colour) in a coloured badge. */
export const StateBadge = (props: { state: MachineState }) => (
  <span class={`state state-${props.state}`}>{props.state}</span>
);

export const Time = (props: { iso: string | null; text: string }) =>
  props.iso ? (
    <time datetime={props.iso} title={props.iso}>
      {props.text}
    </time>
  ) : (
    <span class="muted">{props.text}</span>
  );

/** Links to the pages before and after this one (hrefs already carry the filters and the cursor). */
export const Pager = (props: { prev?: string | undefined; next?: string | undefined }) =>
  props.prev || props.next ? (
    <nav class="pager" aria-label="pages">
      {props.prev ? <a href={props.prev}>← Previous</a> : <span />}
      {props.next ? <a href={props.next}>Next →</a> : <span />}
    </nav>
  ) : null;
