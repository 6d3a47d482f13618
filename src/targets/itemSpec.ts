import type { Item, ProcessSpec, FileSpec, ScriptSpec, DirectorySpec, PostgresqlDatabaseSpec } from '../manifest/types.ts';
import { shellQuote } from './shellQuote.ts';

/**
 * The files the runtime reads to activate an item. Model values become file content: the
 * environment as `export NAME='value'` lines (names were validated, values are quoted), a
 * path or a command as a file of its own, never a word on a command line.
 */
export function itemSpecFiles(item: Item, address: string): Record<string, string> {
  const files: Record<string, string> = { module: item.module, artifact: item.artifact ?? '', bind: address };
  switch (item.module) {
    case 'process': {
      const spec = item.spec as ProcessSpec;
      files.env = envFile(spec.env);
      files.start = `${spec.start}\n`;
      if (spec.ready?.port !== undefined) files.ready_port = String(spec.ready.port);
      if (spec.ready?.command !== undefined) files.ready_command = `${spec.ready.command}\n`;
      if (spec.ready) files.ready_timeout = String(Math.ceil(spec.ready.timeout));
      break;
    }
    case 'script':
      files.env = envFile((item.spec as ScriptSpec).env);
      break;
    case 'postgresql-database': {
      const spec = item.spec as PostgresqlDatabaseSpec;
      files.env = envFile(spec.env);
      files.database = spec.database;
      break;
    }
    case 'file': {
      const spec = item.spec as FileSpec;
      files.path = spec.path;
      files.allowed = spec.allowed.map((a) => `${a}\n`).join('');
      break;
    }
    case 'directory': {
      const spec = item.spec as DirectorySpec;
      files.path = spec.path;
      files.mode = spec.mode;
      files.allowed = spec.allowed.map((a) => `${a}\n`).join('');
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
