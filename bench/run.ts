import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * `npm run bench -- NAME [flags]`: runs `bench/NAME.ts`'s `run(flags)`. Benchmarks are never part of `npm test`;
 * each prints one line per figure with a peer measured in the same run (STYLE.md, Benchmarks).
 */
interface BenchModule {
  run(args: string[]): Promise<void>;
}

const BENCH_DIR = import.meta.dirname;

function available(): string[] {
  return readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
    .map((f) => f.slice(0, -'.ts'.length))
    .sort();
}

function isBenchModule(m: unknown): m is BenchModule {
  return typeof m === 'object' && m !== null && typeof (m as { run?: unknown }).run === 'function';
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const names = available();
  if (name === undefined || !names.includes(name)) {
    process.stderr.write(`${name === undefined ? 'no benchmark named' : `unknown benchmark '${name}'`}; available: ${names.join(', ')}\n`);
    process.stderr.write('usage: npm run bench -- NAME [flags]\n');
    return 2;
  }
  const mod: unknown = await import(pathToFileURL(join(BENCH_DIR, `${name}.ts`)).href);
  if (!isBenchModule(mod)) {
    process.stderr.write(`bench/${name}.ts does not export run(args)\n`);
    return 2;
  }
  await mod.run(args);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
