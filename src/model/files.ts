import type { YamlSource } from './yamlSource.ts';

/** One model file as parsed: where its values came from, and the values. */
export interface ParsedFile {
  source: YamlSource;
  value: any;
}

export function describeDir(dir: string): string {
  return dir === '.' ? '(the repository root)' : dir;
}
