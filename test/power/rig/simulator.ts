import { type Chassis, RedfishSim, VirtualChassis } from "./redfish-sim.ts";
import { scratchDir } from "./scratch.ts";
import { selfSigned } from "./tls.ts";

/** A Redfish simulator on loopback behind a fresh self-signed certificate (the `caCert` a BMC record pins). */
export async function startRedfishSim(opts: {
  password: string;
  username?: string;
  chassis?: Chassis;
}): Promise<{ sim: RedfishSim; port: number; cert: string }> {
  const tls = selfSigned(scratchDir("kindling-bmc-tls-"));
  const sim = new RedfishSim({
    username: opts.username ?? "admin",
    password: opts.password,
    cert: tls.cert,
    key: tls.key,
    chassis: opts.chassis ?? new VirtualChassis(),
  });
  return { sim, port: await sim.listen(), cert: tls.cert };
}
