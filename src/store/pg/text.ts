/**
 * PostgreSQL's text cannot hold NUL, SQLite's can, and what a boot request names may carry one (`serial=%00`
 * in an /ipxe URL, a DHCP hostname): sent as is, it would fail its whole statement (a shipment, a batch of
 * leases) every time. It is dropped instead.
 */
export function pgText<T extends string | null>(s: T): T {
  return (s === null || !s.includes("\0") ? s : s.replaceAll("\0", "")) as T;
}
