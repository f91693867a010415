/**
 * The unit-file check Ignition runs on unit and drop-in contents (go-systemd's `unit.Deserialize`), rule for
 * rule, so that a config is refused exactly when Ignition refuses it:
 * - outside a section every line is skipped, except that a `#`/`;` comment ending in `\` also skips the next;
 * - `[Name]` opens a section; the rest of that line must be blank; a `[` with no `]` anywhere after it fails;
 * - in a section, a line is blank, a comment, a section header or `Name=Value`: a line without `=` fails;
 *   a value ending in `\` continues on the next line (a backslash followed by a space does not);
 * - the parser reads through a 4096-byte buffer and, whenever at least 2048 bytes are buffered ahead of the
 *   next step, fails if those 2048 bytes hold no line break: in practice a line of 2048 bytes or more fails.
 * `parseUnit` also gives the section of every option read (Ignition warns when an enabled unit has none in
 * `[Install]`).
 */
const LINE_MAX = 2048;
const BUFFER = 4096;

/** Go's unicode.IsSpace. */
function isSpace(cp: number): boolean {
  return (
    (cp >= 0x09 && cp <= 0x0d) ||
    cp === 0x20 ||
    cp === 0x85 ||
    cp === 0xa0 ||
    cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    cp === 0x202f ||
    cp === 0x205f ||
    cp === 0x3000
  );
}

const EDGE_SPACE =
  /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/gu;

/** Go's bytes.TrimSpace, as text. */
function trimSpace(b: Buffer): string {
  return b.toString("utf8").replace(EDGE_SPACE, "");
}

class Reader {
  r = 0;
  w = 0;
  eof = false;
  private last = 0;
  constructor(private readonly data: Buffer) {}

  private fill(): void {
    if (this.w >= this.data.length) this.eof = true;
    else this.w = Math.min(this.r + BUFFER, this.data.length);
  }

  buffered(): number {
    return this.w - this.r;
  }

  /** True when the next LINE_MAX buffered bytes hold a line break (the caller checked at least that many are buffered). */
  peekHasBreak(): boolean {
    for (let i = this.r; i < this.r + LINE_MAX; i++) if (this.data[i] === 0x0a || this.data[i] === 0x0d) return true;
    return false;
  }

  readRune(): number | undefined {
    while (this.r + 4 > this.w && !this.fullRune() && !this.eof && this.w - this.r < BUFFER) this.fill();
    if (this.r === this.w) return undefined;
    const b = this.data[this.r] ?? 0;
    let size = 1;
    let cp = b;
    if (b >= 0x80) {
      const len = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
      const s = this.data.subarray(this.r, Math.min(this.r + len, this.w)).toString("utf8");
      const c = s.codePointAt(0) ?? 0xfffd;
      if (len > 1 && c !== 0xfffd && s.length <= 2) {
        size = len;
        cp = c;
      } else cp = 0xfffd;
    }
    this.r += size;
    this.last = size;
    return cp;
  }

  private fullRune(): boolean {
    const n = this.w - this.r;
    if (n === 0) return false;
    const b = this.data[this.r] ?? 0;
    const need = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return n >= need;
  }

  unreadRune(): void {
    this.r -= this.last;
  }

  /** bufio.ReadBytes: up to and including `delim`; `found` false at the end of the data. */
  readBytes(delim: number): { bytes: Buffer; found: boolean } {
    const start = this.r;
    for (;;) {
      const i = this.data.subarray(this.r, this.w).indexOf(delim);
      if (i >= 0) {
        this.r += i + 1;
        return { bytes: this.data.subarray(start, this.r), found: true };
      }
      if (this.eof) {
        this.r = this.w;
        return { bytes: this.data.subarray(start, this.r), found: false };
      }
      if (this.buffered() >= BUFFER) this.r = this.w;
      this.fill();
    }
  }

  /** The rest of the line without its "\n" (then one "\r"), and whether the data ended. */
  toEol(): { line: Buffer; eof: boolean } {
    const { bytes, found } = this.readBytes(0x0a);
    let end = bytes.length;
    if (!found && end > 0 && bytes[end - 1] === 0x0d) end--;
    else if (found) {
      end--;
    }
    return { line: bytes.subarray(0, end), eof: !found };
  }
}

type Step = () => Step | undefined;

export function unitSyntaxError(text: string): string | undefined {
  return parseUnit(text).error;
}

export function parseUnit(text: string): { error?: string; optionSections: string[] } {
  const rd = new Reader(Buffer.from(text, "utf8"));
  const optionSections: string[] = [];
  let section = "";
  let failure: string | undefined;
  const fail = (message: string): undefined => {
    failure = message;
    return undefined;
  };
  const isComment = (cp: number) => cp === 0x23 || cp === 0x3b;

  const ignoreLine =
    (next: Step): Step =>
    () => {
      for (;;) {
        let { line } = rd.toEol();
        if (line[line.length - 1] === 0x20) line = line.subarray(0, -1);
        if (line[line.length - 1] !== 0x5c) return next;
      }
    };
  const nextSection: Step = () => {
    const cp = rd.readRune();
    if (cp === undefined) return undefined;
    if (cp === 0x5b) return sectionName;
    if (isComment(cp)) return ignoreLine(nextSection);
    return nextSection;
  };
  const sectionName: Step = () => {
    const { bytes, found } = rd.readBytes(0x5d);
    if (!found) return fail("unable to find end of section");
    section = bytes.subarray(0, -1).toString("utf8");
    return () => {
      const garbage = trimSpace(rd.toEol().line);
      if (garbage !== "") return fail(`found garbage after a section name: ${JSON.stringify(garbage)}`);
      return sectionOrOption;
    };
  };
  const sectionOrOption: Step = () => {
    const cp = rd.readRune();
    if (cp === undefined) return undefined;
    if (isSpace(cp)) return sectionOrOption;
    if (cp === 0x5b) return sectionName;
    if (isComment(cp)) return ignoreLine(sectionOrOption);
    rd.unreadRune();
    return optionName;
  };
  const optionName: Step = () => {
    for (;;) {
      const cp = rd.readRune();
      if (cp === undefined) return fail("EOF");
      if (cp === 0x0a || cp === 0x0d) return fail("unexpected newline encountered while parsing option name");
      if (cp === 0x3d) return optionValue;
    }
  };
  const optionValue: Step = () => {
    const { line } = rd.toEol();
    if (trimSpace(line) !== "" && line[line.length - 1] === 0x5c) return optionValue;
    optionSections.push(section);
    return sectionOrOption;
  };

  let step: Step | undefined = nextSection;
  while (step) {
    if (rd.buffered() >= LINE_MAX && !rd.peekHasBreak())
      return { error: `line too long (max ${LINE_MAX} bytes)`, optionSections };
    step = step();
  }
  return failure === undefined ? { optionSections } : { error: failure, optionSections };
}
