import { appendFileSync, readFileSync } from "node:fs";
import { QmpChassis } from "./qmp.ts";
import { RedfishSim } from "./redfish-sim.ts";

/**
 * The Redfish simulator as its own process, started inside a test's namespace so that Kindling (in the same
 * namespace) reaches it on 127.0.0.1 and the QEMU guest it powers sits on the namespace's tap. Argument: a JSON
 * file { port, certFile, keyFile, username, password, guest: argv, qmp: socket path, qemuLog, resetLog }.
 */
const cfg = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as {
  port: number;
  certFile: string;
  keyFile: string;
  username: string;
  password: string;
  guest: string[];
  qmp: string;
  qemuLog: string;
  resetLog: string;
};
const chassis = new QmpChassis(cfg.guest, cfg.qmp, cfg.qemuLog);
const sim = new RedfishSim({
  username: cfg.username,
  password: cfg.password,
  cert: readFileSync(cfg.certFile, "utf8"),
  key: readFileSync(cfg.keyFile, "utf8"),
  chassis: {
    powerState: () => chassis.powerState(),
    reset: async (type) => {
      // The boot override the last power-on or restart used (consumed before this call), for the test to read.
      appendFileSync(cfg.resetLog, `${JSON.stringify({ type, lastBoot: sim.bootsUsed.at(-1) ?? null })}\n`);
      await chassis.reset(type);
    },
  },
});
const port = await sim.listen("127.0.0.1", cfg.port);
process.stdout.write(`listening ${port}\n`);
