import type { Item, ProcessSpec, FileSpec, ScriptSpec, DirectorySpec, PostgresqlDatabaseSpec } from '../manifest/types.ts';
import { SPEC_FILE as F } from './runtime/protocol.ts';
import { shellQuote } from './shellQuote.ts';

/**
 * The files the runtime reads to activate an item. Model values become file content: the
 * environment as `export NAME='value'` lines (names were validated, values are quoted), a
 * path or a command as a file of its own, never a word on a command line. The names are the
 * protocol's (SPEC_FILE), which the runtime reads.
 */
export function itemSpecFiles(item: Item, address: string): Record<string, string> {
  const files: Record<string, string> = { [F.module]: item.module, [F.artifact]: item.artifact ?? '', [F.bind]: address };
  switch (item.module) {
    case 'process': {
      const spec = item.spec as ProcessSpec;
      files[F.env] = envFile(spec.env);
      files[F.start] = `${spec.start}\n`;
      if (spec.ready?.port !== undefined) files[F.readyPort] = String(spec.ready.port);
      if (spec.ready?.command !== undefined) files[F.readyCommand] = `${spec.ready.command}\n`;
      if (spec.ready) files[F.readyTimeout] = String(Math.ceil(spec.ready.timeout));
      break;
    }
    case 'script':
      files[F.env] = envFile((item.spec as ScriptSpec).env);
      break;
    case 'postgresql-database': {
      const spec = item.spec as PostgresqlDatabaseSpec;
      files[F.env] = envFile(spec.env);
      files[F.database] = spec.database;
      break;
    }
    case 'file': {
      const spec = item.spec as FileSpec;
      files[F.path] = spec.path;
      files[F.allowed] = spec.allowed.map((a) => `${a}\n`).join('');
      break;
    }
    case 'directory': {
      const spec = item.spec as DirectorySpec;
      files[F.path] = spec.path;
      files[F.mode] = spec.mode;
      files[F.allowed] = spec.allowed.map((a) => `${a}\n`).join('');
      break;
    }
  }
  return files;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function envFile(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => {
      if (!ENV_NAME.test(k)) throw new Error(`unsafe environment variable name ${JSON.stringify(k)}`);
      return `export ${k}=${shellQuote(v)}\n`;
    })
    .join('');
}
