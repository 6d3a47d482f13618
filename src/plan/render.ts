import type { Change, Plan, Step } from './types.ts';
import { CHANGE_SYMBOL } from './types.ts';

export type PlanFormat = 'text' | 'markdown' | 'json';

export function renderPlan(plan: Plan, format: PlanFormat): string {
  if (format === 'json') return `${JSON.stringify(plan, null, 2)}\n`;
  return format === 'markdown' ? renderMarkdown(plan) : renderText(plan);
}

function header(plan: Plan): string {
  if (plan.revisions) return `${plan.deployment}: ${plan.revisions.base} → ${plan.revisions.head}`;
  const from = plan.basis.generation === null ? 'nothing deployed' : `generation ${plan.basis.generation}`;
  return `${plan.deployment}: ${from} → generation ${plan.generation}`;
}

function changeLine(c: Change): string {
  const where = c.action === 'move' ? `${c.from} → ${c.machine}` : `on ${c.machine}`;
  return `${CHANGE_SYMBOL[c.action]} ${c.name} ${where} (${c.action}: ${c.reasons.join('; ')})`;
}

function stepLine(s: Step): string {
  const waits = s.after.length ? ` after ${s.after.map((a) => `#${a}`).join(', ')}` : '';
  const source = s.action === 'restore' && s.source ? ` from snapshot #${s.source}` : '';
  return `${s.id}. [${s.machine}] ${s.action} ${s.item.layer === 'service' ? 'service' : s.item.module} ${s.item.name}${source}${waits}`;
}

/** The data of stateful services the plan carries: `app-db db1 → db2`, or `old-db on db1 (kept)` for a removal. */
function snapshotSummary(plan: Plan): string[] {
  const restores = new Map(plan.steps.filter((s) => s.action === 'restore' && s.source).map((s) => [s.source!, s]));
  return plan.steps
    .filter((s) => s.action === 'snapshot')
    .map((s) => {
      const r = restores.get(s.id);
      return r ? `${s.item.name} ${s.machine} → ${r.machine}` : `${s.item.name} on ${s.machine} (kept in the state directory)`;
    });
}

/** Services stopped and started again on the same machine: what a reader cares about most. */
function restarts(plan: Plan): string[] {
  return plan.changes.filter((c) => c.action === 'upgrade' && c.layer === 'service').map((c) => `${c.name} on ${c.machine}`);
}

function uploadSummary(plan: Plan): string[] {
  return Object.entries(plan.uploads).map(([m, list]) => `${m}: ${list.length} artifact${list.length === 1 ? '' : 's'}, ${formatBytes(list.reduce((n, u) => n + u.size, 0))}`);
}

function renderText(plan: Plan): string {
  if (plan.steps.length === 0) return `${header(plan)}\nNo changes: every machine already runs the desired state.\n`;
  const lines = [header(plan), `Machines touched: ${plan.machines.join(', ')}`, ''];
  for (const layer of ['infrastructure', 'service'] as const) {
    const cs = plan.changes.filter((c) => c.layer === layer);
    if (!cs.length) continue;
    lines.push(layer === 'service' ? 'Services:' : 'Infrastructure:', ...cs.map((c) => `  ${changeLine(c)}`), '');
  }
  lines.push('Order:', ...plan.steps.map((s) => `  ${stepLine(s)}`), '');
  const r = restarts(plan);
  if (r.length) lines.push(`Restarts: ${r.join(', ')}`);
  const u = uploadSummary(plan);
  if (u.length) lines.push(`Uploads: ${u.join('; ')}`);
  const snaps = snapshotSummary(plan);
  if (snaps.length) lines.push(`Snapshots: ${snaps.join('; ')}`);
  const counts = countActions(plan);
  lines.push(`Plan: ${counts.add} to add, ${counts.upgrade} to upgrade, ${counts.move} to move, ${counts.remove} to remove.`);
  return `${lines.join('\n')}\n`;
}

function renderMarkdown(plan: Plan): string {
  const lines = [`### strata plan: ${header(plan)}`, ''];
  if (plan.steps.length === 0) return `${lines.join('\n')}No changes: every machine already runs the desired state.\n`;
  const counts = countActions(plan);
  lines.push(
    `**${counts.add}** to add, **${counts.upgrade}** to upgrade, **${counts.move}** to move, **${counts.remove}** to remove · machines touched: ${plan.machines.map((m) => `\`${m}\``).join(', ')}`,
    '',
    '| | Layer | Name | Machine | Why |',
    '|---|---|---|---|---|',
    ...plan.changes.map((c) => `| \`${CHANGE_SYMBOL[c.action]}\` ${c.action} | ${c.layer} | ${code(c.name)} | ${c.action === 'move' ? `${c.from} → ${c.machine}` : c.machine} | ${md(c.reasons.join('; '))} |`),
    '',
  );
  const r = restarts(plan);
  if (r.length) lines.push(`**Restarts:** ${r.map(md).join(', ')}`, '');
  const u = uploadSummary(plan);
  if (u.length) lines.push(`**Uploads:** ${u.map(md).join('; ')}`, '');
  const snaps = snapshotSummary(plan);
  if (snaps.length) lines.push(`**Snapshots:** ${snaps.map(md).join('; ')}`, '');
  const order = plan.steps.map(stepLine);
  const fence = '`'.repeat(Math.max(3, longestBacktickRun(order.join('\n')) + 1));
  lines.push('<details><summary>Order of steps</summary>', '', fence, ...order, fence, '</details>', '');
  return `${lines.join('\n')}`;
}

function countActions(plan: Plan): Record<Change['action'], number> {
  const out = { add: 0, remove: 0, upgrade: 0, move: 0 };
  for (const c of plan.changes) out[c.action]++;
  return out;
}

/** A code span that survives backticks in the text; `|` stays escaped for the table around it. */
function code(s: string): string {
  const ticks = '`'.repeat(longestBacktickRun(s) + 1);
  const pad = s.startsWith('`') || s.endsWith('`') ? ' ' : '';
  return `${ticks}${pad}${s.replace(/\|/g, '\\|')}${pad}${ticks}`;
}

function longestBacktickRun(s: string): number {
  return Math.max(0, ...(s.match(/`+/g) ?? []).map((r) => r.length));
}

function md(s: string): string {
  return s.replace(/[|`<>]/g, (ch) => `\\${ch}`);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
