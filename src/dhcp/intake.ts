/**
 * What both modes do with a request before answering it: refuse what is not an Ethernet DHCP request,
 * classify the sender, record a network-boot client's machine, and plan what it should boot.
 */
import { classifyClient, machineArch } from "../boot/dhcp-plan.ts";
import { bootsFromNetwork } from "../boot/lifecycle.ts";
import type { Machines } from "../boot/machines.ts";
import type { DhcpBoot } from "../boot/service.ts";
import type { EventSink } from "../model/event.ts";
import { macFromBytes, normalizeUuid } from "../model/identity.ts";
import type { Machine } from "../model/machine.ts";
import type { DhcpConfig } from "./config.ts";
import { type DhcpRequest, DropError, type Incoming, MAX_TEXT } from "./exchange.ts";
import { MessageType, Opt, OptionError } from "./options.ts";
import type { Replies } from "./replies.ts";

export interface IntakeDeps {
  config: DhcpConfig;
  /** The machine owner (boot/machines.ts): records each boot exchange's machine. */
  machines: Pick<Machines, "sighting">;
  events: EventSink;
  /**
   * Whether a known machine boots from the network now and with which loader, by its state and resolved
   * profile (BootService.dhcpBoot). Without it only the state counts, as for an unresolvable profile.
   */
  bootFor?: ((machine: Machine) => DhcpBoot) | undefined;
}

export function intake(d: IntakeDeps, replies: Replies, inc: Incoming): DhcpRequest {
  const req = inc.packet;
  if (req.op !== 1) throw new DropError("not a BOOTREQUEST");
  const type = req.options.get(Opt.MessageType);
  if (type === undefined) throw new DropError("no message type (BOOTP is not served)");
  if (req.hlen !== 6 || req.htype !== 1) throw new DropError(`hardware type ${req.htype}/${req.hlen} is not Ethernet`);
  // Echoed into every reply: longer than one option (RFC 3046) it could make the reply too big to send.
  const relay = req.options.raw.get(Opt.RelayAgent);
  if (relay && relay.length > MAX_TEXT)
    throw new OptionError(`option 82: ${relay.length} bytes, more than ${MAX_TEXT}`);
  const mac = macFromBytes(req.chaddr);
  const client = classifyClient(
    {
      vendorClass: req.options.get(Opt.VendorClass),
      archs: req.options.get(Opt.ClientArch),
      userClasses: req.options.get(Opt.UserClass)?.classes,
      hasIpxeOptions: req.options.has(Opt.Ipxe),
    },
    d.config.ipxeUserClasses,
  );
  let machine: Machine | undefined;
  if (
    client.kind !== "plain" &&
    (type === MessageType.DISCOVER || type === MessageType.REQUEST || type === MessageType.INFORM)
  ) {
    // Every boot exchange feeds the machine record before iPXE ever runs.
    // An all-zero GUID means the firmware has no SMBIOS UUID.
    const uuid = normalizeUuid(req.options.get(Opt.ClientGuid));
    machine = d.machines.sighting(
      { mac, uuid: uuid && /[1-9a-f]/.test(uuid) ? uuid : undefined, arch: machineArch(client) },
      { by: "dhcp" },
    );
  }
  const boot = machine
    ? (d.bootFor?.(machine) ?? { fromNetwork: bootsFromNetwork(machine.state, undefined), loader: undefined })
    : { fromNetwork: true, loader: undefined };
  // The profile's loader matters only to firmware choosing its first file.
  const loader = client.kind === "pxe" ? boot.loader : undefined;
  const answer = replies.plan(client, boot.fromNetwork, inc.link, loader);
  if (answer.kind === "unknown-arch" && type === MessageType.DISCOVER)
    d.events.append({
      mac,
      kind: "dhcp.unknown-arch",
      detail: {
        arch: answer.arch ?? null,
        vendorClass: req.options.get(Opt.VendorClass)?.slice(0, MAX_TEXT) ?? null,
      },
    });
  if (answer.kind === "no-loader" && type === MessageType.DISCOVER)
    d.events.append({ mac, kind: "dhcp.no-loader", detail: { reason: answer.reason } });
  return { req, inc, type, mac, client, loader, answer };
}
