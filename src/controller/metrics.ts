import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The controller's Prometheus metrics, in a registry of its own (no module-level state). */
export class ControllerMetrics {
  readonly registry = new Registry();
  readonly reconcileDuration = new Histogram({
    name: 'strata_reconcile_duration_seconds',
    help: 'Time one reconcile took, by deployment and result (applied, unchanged, failed, stalled, suspended).',
    labelNames: ['deployment', 'result'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });
  readonly reconciles = new Counter({
    name: 'strata_reconcile_total',
    help: 'Reconciles run, by deployment and result.',
    labelNames: ['deployment', 'result'],
    registers: [this.registry],
  });
  readonly transitions = new Counter({
    name: 'strata_transitions_total',
    help: 'Transitions applied to machines, by deployment and result (succeeded, rolled_back).',
    labelNames: ['deployment', 'result'],
    registers: [this.registry],
  });
  readonly lastApplied = new Gauge({
    name: 'strata_last_applied_revision_info',
    help: 'The revision and generation last applied, as labels; the value is always 1.',
    labelNames: ['deployment', 'revision', 'generation'],
    registers: [this.registry],
  });
  readonly lastAppliedTime = new Gauge({
    name: 'strata_last_applied_timestamp_seconds',
    help: 'When the last transition of the deployment succeeded (unix time).',
    labelNames: ['deployment'],
    registers: [this.registry],
  });
  readonly machinesReachable = new Gauge({
    name: 'strata_machines_reachable',
    help: 'Machines of the deployment that answered during the last transition or status check.',
    labelNames: ['deployment'],
    registers: [this.registry],
  });
  readonly machines = new Gauge({
    name: 'strata_machines',
    help: 'Machines in the deployment\'s recorded generation.',
    labelNames: ['deployment'],
    registers: [this.registry],
  });
  readonly driftItems = new Gauge({
    name: 'strata_drift_items',
    help: 'Items that differed from the recorded generation at the last probe.',
    labelNames: ['deployment'],
    registers: [this.registry],
  });
  readonly driftEvents = new Counter({
    name: 'strata_drift_events_total',
    help: 'Drifted items found, by what was done: healed, reported (selfHeal off), heal_failed.',
    labelNames: ['deployment', 'action'],
    registers: [this.registry],
  });
  readonly webhookDeliveries = new Counter({
    name: 'strata_webhook_deliveries_total',
    help: 'Webhook requests, by what was done: queued, replayed (a delivery id seen in the last hour; nothing queued), refused.',
    labelNames: ['deployment', 'result'],
    registers: [this.registry],
  });
  readonly ready = new Gauge({
    name: 'strata_deployment_ready',
    help: '1 when the deployment runs its latest revision, else 0.',
    labelNames: ['deployment'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'strata_process_' });
  }

  private readonly appliedLabels = new Map<string, { deployment: string; revision: string; generation: string }>();

  /** One series per deployment: the previous revision's series is removed. */
  setLastApplied(deployment: string, revision: string, generation: number): void {
    const previous = this.appliedLabels.get(deployment);
    if (previous) this.lastApplied.remove(previous);
    const labels = { deployment, revision, generation: String(generation) };
    this.appliedLabels.set(deployment, labels);
    this.lastApplied.set(labels, 1);
  }
}
