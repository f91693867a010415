/** Input that names something that does not exist or cannot be used, by field: the API answers it with a 400. */
export class InvalidFieldError extends Error {
  override name = "InvalidFieldError";
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

/** A setting (file, flag, environment or a file it names) that stops start-up; the message names the key. */
export class ConfigError extends Error {
  override name = "ConfigError";
}
