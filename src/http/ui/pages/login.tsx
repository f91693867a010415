import { Page } from "../layout.tsx";
import type { Flash } from "../session.ts";

export const LoginPage = (props: { flash?: Flash | undefined }) => (
  <Page title="Log in" flash={props.flash}>
    <form class="login" method="post" action="/ui/login">
      <label>
        API token
        <input type="password" name="token" autocomplete="current-password" required autofocus />
      </label>
      <p class="muted">The token is in the data directory (file api-token) or the server's configuration.</p>
      <button type="submit">Log in</button>
    </form>
  </Page>
);
