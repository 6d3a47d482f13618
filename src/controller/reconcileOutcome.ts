import type { Logger } from 'pino';
import type { Services } from '../api/context.ts';
import type { DeploymentRecord } from './deploymentRecord.ts';
import type { ControllerMetrics } from './metrics.ts';

export interface ReconcileDeps {
  stateDir: string;
  services: Services;
  metrics: ControllerMetrics;
  log: Logger;
  /** Persists the deployment's status notes (failures, suspension) across restarts. */
  persist: (d: DeploymentRecord) => void;
}

export type ReconcileResult = 'applied' | 'unchanged' | 'failed' | 'stalled' | 'suspended' | 'rolled-back';

export interface Outcome {
  result: ReconcileResult;
  /** When to look again; undefined: only when something (a webhook, a resume) asks. */
  requeueAfterMs?: number;
}
