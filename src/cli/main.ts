import { formatIssue, ModelError, StrataError } from '../errors.ts';
import { EXIT, exitCodeFor } from './exitCodes.ts';
import { processIo, type Io } from './io.ts';
import { escapeControls } from '../targets/machineText.ts';

type Command = { run: (argv: string[], io: Io) => Promise<number>; help: string };

/** Commands load lazily, so `strata validate` does not pay for ssh2. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  validate: () => import('./commands/validate.ts'),
  plan: () => import('./commands/plan.ts'),
  apply: () => import('./commands/apply.ts'),
  status: () => import('./commands/status.ts'),
  rollback: () => import('./commands/rollback.ts'),
  destroy: () => import('./commands/destroy.ts'),
  history: () => import('./commands/history.ts'),
  snapshot: () => import('./commands/snapshot.ts'),
  restore: () => import('./commands/restore.ts'),
  repair: () => import('./commands/repair.ts'),
  adopt: () => import('./commands/adopt.ts'),
  'abandon-machine': () => import('./commands/abandonMachine.ts'),
  controller: () => import('./commands/controller.ts'),
  testnet: () => import('./commands/testnet.ts'),
  schema: () => import('./commands/schema.ts'),
};

const USAGE = `strata: GitOps deployment of machines and the services on them

usage: strata COMMAND [ARGS] [--state DIR] [--json] [--quiet]

commands:
  validate [ROOT]            check the models; touches no machine
  plan [ROOT]                show what apply would change (--format text|markdown|json, --out FILE)
  apply [ROOT|PLAN.json]     make the machines run the models; rolls back on failure
  status [ROOT]              what runs where, asked of every machine
  rollback [ROOT] [--to N]   return to the previous (or Nth) generation
  repair [ROOT]              put back what drifted from the recorded generation
  destroy [ROOT]             stop and remove everything the deployment runs
  abandon-machine M [ROOT]   give up on a machine gone for good (needs --reason, --yes)
  history [ROOT]             the recorded generations and the commits they came from
  adopt [ROOT]               rebuild the recorded state from what the machines record
  snapshot --service NAME    snapshot a stateful service's data now
  restore --service NAME     put a snapshot back into a running service (needs --yes)
  controller --config FILE   keep deployments equal to their Git branches (GitOps)
  testnet up|down DIR        real SSH test hosts on this machine (needs root)
  schema [KIND]              JSON Schema of the model files

ROOT is a deployment's root file (default strata.yaml). --state DIR holds the recorded state
(default $STRATA_STATE_DIR, else .strata beside ROOT). \`strata COMMAND --help\` says more.
exit codes: 0 ok, 1 failed, 2 bad input, 3 stale plan, 4 machine locked
`;

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(USAGE);
    return name ? EXIT.ok : EXIT.badInput;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    io.err(`strata: unknown command "${name}"\n\n${USAGE}`);
    return EXIT.badInput;
  }
  const command = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(`${command.help}\n`);
    return EXIT.ok;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    reportError(e, io, rest.includes('--json'));
    return exitCodeFor(e);
  }
}

function reportError(e: unknown, io: Io, json: boolean): void {
  if (json) {
    io.out(`${JSON.stringify({ error: e instanceof StrataError ? e.toJSON() : { code: 'INTERNAL', message: String(e) } })}\n`);
  }
  if (e instanceof ModelError) {
    io.err(`strata: the models are invalid (${e.issues.length} problem${e.issues.length === 1 ? '' : 's'}); no machine was touched\n`);
    for (const i of e.issues) io.err(`  ${formatIssue(i)}\n`);
  } else if (e instanceof StrataError) {
    // Escaped once more here: no text a machine sent can drive the user's terminal.
    io.err(`strata: ${escapeControls(e.message)}\n`);
  } else {
    io.err(`strata: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  }
}
