/**
 * `{{ path.to.value }}` substitution into single strings (kernel args, URLs). Values are looked up by dotted
 * path in a plain object; a missing one is an error naming it, so nothing is ever rendered with a hole in it.
 */
export class TemplateError extends Error {
  override name = "TemplateError";
  constructor(
    message: string,
    readonly reference: string,
  ) {
    super(message);
  }
}

const REF = /\{\{\s*([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)\s*\}\}/g;

export function lookup(values: unknown, path: string): unknown {
  let node: unknown = values;
  for (const key of path.split(".")) {
    if (node === null || typeof node !== "object" || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

export function expand(text: string, values: unknown): string {
  return text.replace(REF, (_, path: string) => {
    const v = lookup(values, path);
    if (v === undefined || v === null) throw new TemplateError(`template value "${path}" is not set`, path);
    if (typeof v === "object") throw new TemplateError(`template value "${path}" is not a scalar`, path);
    return String(v);
  });
}
