import { parseTemplate, refName, resolveRef, TemplateError, type TemplateValues } from "../ignition/template.ts";

export { TemplateError };

/**
 * Expands `{{ ref }}` in one kernel argument or URL with the same engine and syntax as Ignition templates.
 * iPXE and the kernel split the command line on whitespace, so a substituted value holding any (a hostname a
 * machine reported as `x ignition.config.url=…`) would smuggle in arguments of its own: it is refused.
 */
export function expandKernelArg(text: string, values: TemplateValues): string {
  return parseTemplate(text)
    .map((part) => {
      if ("text" in part) return part.text;
      const value = String(resolveRef(values, part.ref));
      if (/\s/.test(value))
        throw new TemplateError(
          `template value "${refName(part.ref)}" contains whitespace, which would split the kernel command line`,
        );
      return value;
    })
    .join("");
}
