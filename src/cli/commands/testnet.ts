import { UsageError } from '../../errors.ts';
import { parseYamlFile } from '../../model/yamlSource.ts';
import { MAX_MODEL_BYTES } from '../../model/yamlText.ts';
import { readRegularFile, shownPath } from '../../lib/regularFile.ts';
import { testnetDown, testnetUp, type HostShell } from '../../testnet/index.ts';
import { parse, type Io } from '../io.ts';

export const help = `strata testnet up DIR (--network FILE... | --machines a,b,c) [--subnet 127.0.1] [--shell default|dash|busybox]
strata testnet down DIR
  up: starts a real SSH test host per machine of the network file(s): its own sshd, host
  key, loopback address (SUBNET.1, SUBNET.2, ...) and filesystem; writes
  DIR/network.physical.yaml to merge with the logical network. Needs root. --shell dash or
  busybox: the hosts' shell and tools are dash, or BusyBox's only (docs/runtime.md, "Platforms").
  down: stops every process the test network started and removes DIR.`;

export async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { network: { type: 'string', multiple: true }, machines: { type: 'string' }, subnet: { type: 'string' }, shell: { type: 'string' } });
  const [verb, dir] = positionals;
  if (!dir || (verb !== 'up' && verb !== 'down')) throw new UsageError('usage: strata testnet up|down DIR');
  const log = values.quiet ? undefined : (m: string) => io.err(`${m}\n`);
  if (verb === 'down') {
    const { stopped } = await testnetDown(dir, { log });
    io.out(`test network in ${dir} is down (${stopped} processes stopped)\n`);
    return 0;
  }
  const machines = values.machines ? values.machines.split(',').map((s) => s.trim()).filter(Boolean) : machinesOf(values.network ?? []);
  if (machines.length === 0) throw new UsageError('name the machines: --network FILE (a network model) or --machines a,b,c');
  const net = await testnetUp({ dir, machines, subnet: values.subnet, shell: values.shell as HostShell | undefined, log });
  if (values.json) io.out(`${JSON.stringify(net, null, 2)}\n`);
  else {
    io.out(`test network up in ${dir}:\n`);
    for (const h of net.hosts) io.out(`  ${h.name}  ${h.address}:${h.port}  (sshd pid ${h.pid})\n`);
    io.out(`physical network model: ${net.physicalNetworkFile}\n`);
  }
  return 0;
}

function machinesOf(files: string[]): string[] {
  const names = new Set<string>();
  for (const f of files) {
    const read = readRegularFile(f, MAX_MODEL_BYTES);
    if ('refused' in read) throw new UsageError(`cannot read the network file ${shownPath(f)}: it ${read.why}`);
    const doc = parseYamlFile(f, read.bytes).value;
    for (const n of Object.keys((doc as { machines?: object })?.machines ?? {})) names.add(n);
  }
  return [...names];
}
