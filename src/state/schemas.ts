import { z } from 'zod';

/**
 * The shapes of the files in a state directory, checked on every read: a file that parses but
 * has the wrong shape is as damaged as a truncated one (STATE_CORRUPT), and must not reach the
 * planner as a manifest with holes. Objects are loose (extra members pass) so that a newer
 * strata's additions do not make an older one refuse the file.
 */

const item = z.looseObject({
  key: z.string().min(1),
  machine: z.string().min(1),
  layer: z.enum(['infrastructure', 'service']),
  name: z.string(),
  module: z.string().min(1),
  spec: z.looseObject({}),
  dependsOn: z.array(z.string()),
  stateful: z.boolean(),
  hash: z.string().min(1),
});

export const machineManifestSchema = z.looseObject({
  name: z.string().min(1),
  address: z.string(),
  target: z.looseObject({ kind: z.enum(['ssh', 'local']) }),
  items: z.array(item),
});

export const manifestSchema = z.looseObject({
  version: z.literal(1),
  deployment: z.string().min(1),
  machines: z.record(z.string(), machineManifestSchema),
  artifacts: z.record(z.string(), z.looseObject({ kind: z.enum(['dir', 'file', 'inline']), hash: z.string(), deploymentDir: z.string().optional() })),
  snapshotsKept: z.number().int().optional(),
  hash: z.string().min(1),
});

export const generationRecordSchema = z.looseObject({
  generation: z.number().int().min(1),
  createdAt: z.string(),
  manifest: manifestSchema,
  rolledBackTo: z.number().int().optional(),
  source: z.string().optional(),
  adoptedFrom: z.looseObject({ manifestHash: z.string() }).optional(),
  commit: z
    .looseObject({ sha: z.string(), author: z.looseObject({ name: z.string(), email: z.string() }), message: z.string(), time: z.string() })
    .optional(),
  abandoned: z
    .looseObject({
      machine: z.string().min(1),
      by: z.string(),
      at: z.string(),
      reason: z.string(),
      items: z.array(z.string()),
      from: z.number().int().min(1),
    })
    .optional(),
  pendingRestores: z
    .array(
      z.looseObject({
        service: z.string().min(1),
        module: z.string().min(1),
        machine: z.string().min(1),
        snapshot: z.looseObject({ file: z.string().regex(/^(?!\.\.?$)[^/\u0000]+$/, 'a file name in the snapshot directory'), sha256: z.string().regex(/^[0-9a-f]{64}$/), createdAt: z.string() }).optional(),
      }),
    )
    .optional(),
});

export const deploymentLockSchema = z.looseObject({
  pid: z.number().int().positive(),
  startTime: z.string().optional(),
  host: z.string(),
  at: z.string(),
});

export const controllerNotesSchema = z.looseObject({
  suspended: z.boolean().optional(),
  lastFailure: z.looseObject({ revision: z.string(), reason: z.string(), message: z.string(), terminal: z.boolean(), at: z.string() }).optional(),
  lastFailedRevision: z.string().optional(),
  lastAppliedRevision: z.string().optional(),
});
