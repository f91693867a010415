import type { BmcRecord, BootMode, PowerState } from "../model/power.ts";

/** One call to one BMC: who it is, the password decrypted for this call only, and the hard deadline. */
export interface BmcCall {
  bmc: BmcRecord;
  password: string;
  /** Aborted at the call's deadline: a driver stops whatever it is doing (kills ipmitool, aborts fetch). */
  signal: AbortSignal;
  timeoutMs: number;
}

export type PowerChange = "on" | "off" | "soft-off" | "cycle" | "reset";

/** What a BMC protocol must do; answers are the BMC's own words, for the machine's history. */
export interface PowerDriver {
  status(call: BmcCall): Promise<{ state: PowerState; answer: string }>;
  power(call: BmcCall, change: PowerChange): Promise<string>;
  /** Next boot (only) from the network; `mode` when the machine's firmware kind is known. */
  pxeOnce(call: BmcCall, mode: BootMode | undefined): Promise<string>;
}

/** A BMC that answered with a refusal or could not be reached; the message is safe to show and record. */
export class BmcError extends Error {
  override name = "BmcError";
  constructor(
    message: string,
    readonly kind: "unreachable" | "auth" | "refused" | "timeout" | "unsupported" | "protocol",
  ) {
    super(message);
  }
}
