import { z } from 'zod';
import { UsageError } from '../../errors.ts';
import { schemas } from '../../model/schema.ts';
import { parse, type Io } from '../io.ts';

export const help = `strata schema [root|network|services|distribution]
  Prints the JSON Schema of a model file kind (all kinds under $defs when none is named),
  for editors: e.g. yaml-language-server's "# yaml-language-server: $schema=..." comment.`;

export async function run(argv: string[], io: Io): Promise<number> {
  const { positionals } = parse(argv, {});
  const kind = positionals[0];
  if (kind !== undefined && !Object.hasOwn(schemas, kind)) throw new UsageError(`unknown model kind "${kind}"; expected root, network, services or distribution`);
  const doc = kind
    ? { title: `strata ${kind} model`, ...z.toJSONSchema(schemas[kind as keyof typeof schemas], { io: 'input' }) }
    : {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        title: 'strata models',
        $defs: Object.fromEntries(Object.entries(schemas).map(([k, s]) => [k, z.toJSONSchema(s, { io: 'input' })])),
      };
  io.out(`${JSON.stringify(doc, null, 2)}\n`);
  return 0;
}
