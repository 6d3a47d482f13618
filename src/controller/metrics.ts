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
  readonly reconciles = this.counter('strata_reconcile_total', 'Reconciles run, by deployment and result.', ['deployment', 'result']);
  readonly transitions = this.counter('strata_transitions_total', 'Transitions applied to machines, by deployment and result (succeeded, rolled_back).', ['deployment', 'result']);
  readonly lastApplied = this.gauge('strata_last_applied_revision_info', 'The revision and generation last applied, as labels; the value is always 1.', ['deployment', 'revision', 'generation']);
  readonly lastAppliedTime = this.gauge('strata_last_applied_timestamp_seconds', 'When the last transition of the deployment succeeded (unix time).', ['deployment']);
  readonly machinesReachable = this.gauge('strata_machines_reachable', 'Machines of the deployment that answered during the last transition or status check.', ['deployment']);
  readonly machines = this.gauge('strata_machines', 'Machines in the deployment\'s recorded generation.', ['deployment']);
  readonly driftItems = this.gauge('strata_drift_items', 'Items that differed from the recorded generation at the last probe.', ['deployment']);
  readonly driftEvents = this.counter('strata_drift_events_total', 'Drifted items found, by what was done: healed, reported (selfHeal off), heal_failed.', ['deployment', 'action']);
  readonly webhookDeliveries = this.counter('strata_webhook_deliveries_total', 'Webhook requests, by what was done: queued, replayed (a delivery id seen in the last hour; nothing queued), refused.', ['deployment', 'result']);
  readonly ready = this.gauge('strata_deployment_ready', '1 when the deployment runs its latest revision, else 0.', ['deployment']);

  private gauge<L extends string>(name: string, help: string, labelNames: L[]): Gauge<L> {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

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
