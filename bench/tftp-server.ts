/** Starts Kindling's TFTP server alone for bench/tftp.sh: `node --import tsx bench/tftp-server.ts PORT ROOT` (port 0: ephemeral). */
import { silentLogger } from "../src/log.ts";
import { TftpConfigSchema } from "../src/tftp/config.ts";
import { TftpServer } from "../src/tftp/server.ts";

const [port, root] = process.argv.slice(2);
if (!port || !root) {
  console.error("usage: tftp-server.ts PORT ROOT");
  process.exit(2);
}
const config = TftpConfigSchema.parse({ host: "127.0.0.1", port, roots: [root] });
const server = await TftpServer.start({ config, roots: config.roots, events: { append() {} }, log: silentLogger });
console.log(`listening ${server.address.host}:${server.address.port}`);
const stop = () => void server.close().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
