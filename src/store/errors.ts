/** Store errors map to HTTP statuses in the API layer: NotFound → 404, Conflict → 409. */
export class NotFoundError extends Error {
  override name = "NotFoundError";
}
export class ConflictError extends Error {
  override name = "ConflictError";
  constructor(
    message: string,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message);
  }
}
