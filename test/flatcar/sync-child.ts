/** A second process syncing into the same mirror (for the concurrent-process test). Args: root origin keyFile fingerprint version */
import { FlatcarConfigSchema } from "../../src/flatcar/config.ts";
import { Mirror } from "../../src/flatcar/mirror.ts";
import { silentLogger } from "../../src/log.ts";
import { CollectingSink } from "./fixture.ts";

const [root, origin, signingKey, signingFingerprint, version] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];
const config = FlatcarConfigSchema.parse({ origin, signingKey, signingFingerprint });
const result = await new Mirror({ root, config, events: new CollectingSink(), log: silentLogger }).sync({
  channel: "stable",
  version,
});
process.stdout.write(JSON.stringify(result));
