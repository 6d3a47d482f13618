import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ShellMachineRuntime } from '../../src/targets/machineRuntime.ts';
import { SshTarget } from '../../src/targets/ssh.ts';
import type { Testnet } from '../../src/testnet/index.ts';
import { onCleanup } from './cleanup.ts';
import { SERVER_JS } from './generate.ts';
import { median, msSince, round1 } from './stats.ts';

/**
 * The costs the apply figures are made of, measured alone against the first test host:
 * an SSH connection, one exec round trip on an open connection, one runtime verb (round trip
 * + `sh runtime.sh`), and a service's node startup until it listens.
 */
export interface Calibration {
  /** New connection (TCP + key exchange + auth) and a first `true`. */
  sshConnectMs: number;
  /** `true` on an open connection. */
  sshExecMs: number;
  /** `runtime.sh status` on an open connection (the runtime is installed by a first call). */
  runtimeVerbMs: number;
  /** `node server.js` on this host until its port accepts a connection. */
  nodeListenMs: number;
}

export async function calibrate(testnet: Testnet, dir: string): Promise<Calibration> {
  const h = testnet.hosts[0]!;
  const target = () =>
    new SshTarget({ machine: h.name, host: h.address, port: h.port, user: 'root', hostKey: h.hostKey, identity: testnet.identityFile });

  const connect: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = target();
    const t0 = performance.now();
    await t.run(['true']);
    connect.push(performance.now() - t0);
    await t.close();
  }

  const t = target();
  const exec: number[] = [];
  const verb: number[] = [];
  try {
    await t.run(['true']);
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      await t.run(['true']);
      exec.push(performance.now() - t0);
    }
    const rt = new ShellMachineRuntime(t, '/var/lib/strata', h.address, 'calibrate');
    await rt.status();
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      await rt.status();
      verb.push(performance.now() - t0);
    }
  } finally {
    await t.close();
  }

  const nodeDir = path.join(dir, 'calibrate-node');
  mkdirSync(nodeDir, { recursive: true });
  writeFileSync(path.join(nodeDir, 'server.js'), SERVER_JS);
  const listen: number[] = [];
  for (let i = 0; i < 5; i++) listen.push(await nodeListen(nodeDir, h.address.replace(/\.\d+$/, '.254'), 40_900 + i));

  return {
    sshConnectMs: round1(median(connect)),
    sshExecMs: round1(median(exec)),
    runtimeVerbMs: round1(median(verb)),
    nodeListenMs: round1(median(listen)),
  };
}

/** Starts the benchmark server with node, waits until it accepts a connection, stops it by PID. */
async function nodeListen(cwd: string, host: string, port: number): Promise<number> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['server.js'], { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOST: host, PORT: String(port) }, stdio: 'ignore' });
  const stop = onCleanup(`node calibration server pid ${child.pid}`, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  try {
    const deadline = Date.now() + 10_000;
    while (!(await accepts(host, port))) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`node server.js did not listen on ${host}:${port}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    return msSince(t0);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    await stop.run();
    if (child.exitCode === null && child.signalCode === null) await exited;
  }
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}
