import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { tokenFile } from "../token.ts";

export class CliError extends Error {
  override name = "CliError";
}

export interface ClientOptions {
  server?: string;
  token?: string;
  dataDir?: string;
}

/** A thin API client for the CLI: every non-2xx answer becomes a CliError with the server's own message. */
export class ApiClient {
  readonly base: string;
  private readonly token: string;

  constructor(opts: ClientOptions) {
    this.base = (opts.server ?? process.env.KINDLING_SERVER ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
    const file = tokenFile(resolve(opts.dataDir ?? process.env.KINDLING_DATA_DIR ?? "./data"));
    const token =
      opts.token ??
      process.env.KINDLING_API_TOKEN ??
      (existsSync(file) ? readFileSync(file, "utf8").trim() : undefined);
    if (!token)
      throw new CliError(
        `no API token: pass --token, set KINDLING_API_TOKEN, or run where ${file} exists (--data-dir)`,
      );
    this.token = token;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await this.send<T>(method, path, body)).body;
  }

  /** A GET of a paged list: the page and the cursor of the next one (the `X-Next-Cursor` header), if any. */
  async page<T>(path: string): Promise<{ items: T[]; next: string | undefined }> {
    const { body, headers } = await this.send<T[]>("GET", path);
    return { items: body, next: headers.get("x-next-cursor") ?? undefined };
  }

  private async send<T>(method: string, path: string, body?: unknown): Promise<{ body: T; headers: Headers }> {
    let res: Response;
    try {
      res = await fetch(`${this.base}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      throw new CliError(
        `cannot reach Kindling at ${this.base}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`,
      );
    }
    const text = await res.text();
    if (!res.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch {
        // not JSON: keep the text
      }
      throw new CliError(`${method} ${path}: ${res.status} ${message}`);
    }
    return { body: (text ? JSON.parse(text) : undefined) as T, headers: res.headers };
  }
}
