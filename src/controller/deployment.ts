import type { DeploymentConfig } from './config.ts';
import type { DeploymentSource } from './source.ts';
import type { DeploymentStatus } from './status.ts';

/** One deployment as the controller holds it between reconciles. */
export interface DeploymentRuntime {
  config: DeploymentConfig;
  source: DeploymentSource;
  status: DeploymentStatus;
  /** When the machines were last probed for drift (ms since epoch). */
  lastProbeAt?: number;
  /** Set when its state could not be read at start (STATE_CORRUPT): read again before each reconcile. */
  stateDamaged?: boolean;
  /** Set by `sync`: try the current commit even if it failed before. */
  forceRetry?: boolean;
  /** Set by `rollback`: the next reconcile rolls back instead. */
  pendingRollback?: { to?: number; settle: (r: { ok: boolean; generation?: number; message: string }) => void };
  /** Set by `abandonMachine`: run before the next recovery and reconcile. */
  pendingAbandon?: { machine: string; reason: string; by: string; settle: (r: AbandonOutcome) => void };
}

export interface AbandonOutcome {
  ok: boolean;
  generation?: number;
  message: string;
  code?: string;
}
