/**
 * Command-line parsing for every subcommand, on `node:util` parseArgs: unknown flags and bad values
 * become a {@link UsageError} whose message is one line naming the flag; the entry point prints it
 * and exits with status 2. It lives below src/cli because the daemon's configuration
 * (daemon/config.ts) declares `clatd run`'s options with the same {@link OptionSpec}.
 */
import { parseArgs } from 'node:util';
import { ClatdError } from '../core/errors.js';

export class UsageError extends ClatdError {
  constructor(message: string) {
    super(message, 'ERR_CLATD_USAGE');
    this.name = 'UsageError';
  }
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Shown in --help, e.g. "PREFIX". */
  value?: string;
  help: string;
  default?: string | boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  options: Record<string, OptionSpec>;
  /** Whether positional arguments are allowed (default: none). */
  positionals?: boolean;
}

export type ParsedValues = Record<string, string | boolean | string[] | undefined>;

export function helpText(spec: CommandSpec): string {
  const lines = [`Usage: ${spec.usage}`, '', spec.summary, '', 'Options:'];
  const rows: [string, string][] = Object.entries(spec.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
    const def = o.default !== undefined && o.default !== false ? ` (default: ${String(o.default)})` : '';
    return [flag, `${o.help}${o.multiple ? ' (repeatable)' : ''}${def}`];
  });
  rows.push(['-h, --help', 'show this help']);
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [f, h] of rows) lines.push(`  ${f.padEnd(w)}  ${h}`);
  return `${lines.join('\n')}\n`;
}

/** Parses `argv` for `spec`. Returns null when --help was asked for (after printing help). */
export function parseCommand(
  spec: CommandSpec,
  argv: string[],
  out: (s: string) => void = (s) => process.stdout.write(s),
): { values: ParsedValues; positionals: string[] } | null {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: spec.positionals === true });
  } catch (e) {
    throw new UsageError(`clatd ${spec.name}: ${oneLine(e)} (try clatd ${spec.name} --help)`);
  }
  if (parsed.values.help) {
    out(helpText(spec));
    return null;
  }
  const values: ParsedValues = {};
  for (const [name, o] of Object.entries(spec.options)) {
    const v = parsed.values[name] as string | boolean | string[] | undefined;
    values[name] = v ?? o.default;
  }
  return { values, positionals: parsed.positionals };
}

function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  // A value that starts with a dash (`--workers -1`): parseArgs's first line says only "ambiguous",
  // its hint (write it --flag=VALUE) is what the user needs.
  const dash = /^Option '(--[\w-]+)' argument is ambiguous/.exec(msg);
  if (dash) return `${dash[1]} needs a value; one starting with "-" is written ${dash[1]}=VALUE`;
  // parseArgs messages carry a hint sentence after the first; keep the part that names the flag.
  return msg.split('\n')[0].replace(/\. To specify a positional argument.*$/, '');
}

/** Parses an integer flag value within [min, max]; throws a UsageError naming the flag. */
export function intFlag(
  cmd: string,
  flag: string,
  v: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new UsageError(`clatd ${cmd}: --${flag} must be an integer, got "${v}"`);
  const n = Number(v);
  if (n < min || n > max) throw new UsageError(`clatd ${cmd}: --${flag} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Parses an enumerated flag value; throws a UsageError naming the flag and the choices. */
export function enumFlag<T extends string>(
  cmd: string,
  flag: string,
  v: string | undefined,
  choices: readonly T[],
): T | undefined {
  if (v === undefined) return undefined;
  if (!(choices as readonly string[]).includes(v)) {
    throw new UsageError(`clatd ${cmd}: --${flag} must be one of ${choices.join(', ')}, got "${v}"`);
  }
  return v as T;
}
