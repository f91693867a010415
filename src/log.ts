import { type Logger, pino } from "pino";

export type { Logger };

/** Structured JSON logs; human-readable when stdout is a terminal. */
export function createLogger(level: string, pretty = process.stdout.isTTY): Logger {
  return pino({
    level,
    base: { app: "kindling" },
    ...(pretty
      ? { transport: { target: "pino-pretty", options: { colorize: true, translateTime: "SYS:HH:MM:ss.l" } } }
      : {}),
  });
}

/** A logger that writes nothing, for tests and library callers that do not care. */
export const silentLogger: Logger = pino({ level: "silent" });
