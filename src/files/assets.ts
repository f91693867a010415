import { join } from "node:path";

/**
 * The assets tree: `<dataDir>/assets`, holding the Flatcar mirror and whatever the operator puts there
 * (raw-boot kernels). HTTP serves it at `/assets/`, and TFTP under the same name for GRUB, which has no HTTP.
 */
export const ASSETS = "assets";

/** URL path of the assets tree, without a trailing slash. */
export const ASSETS_URL = `/${ASSETS}`;

export const assetsDir = (dataDir: string): string => join(dataDir, ASSETS);
