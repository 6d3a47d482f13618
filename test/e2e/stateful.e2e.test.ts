import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planDeployment } from '../../src/api/plan.ts';
import { deploymentStatus } from '../../src/api/status.ts';
import { sidecarOf } from '../../src/state/snapshots.ts';
import { type Testnet, hostPath, testnetDown, testnetUp } from '../../src/testnet/index.ts';
import { cli } from '../support/cli.ts';
import { contextFor } from '../../src/api/services.ts';

// Stateful services on real sshd hosts: each host runs a PostgreSQL server as a machine-level
// daemon, offered as a container; a postgresql-database service moves between them with its
// data (snapshot, transfer, restore), a failing move is rolled back with nothing lost, and a
// stateful process carries its STATE_DIR along.
const ROWS = 1000;
let work: string;
let net: Testnet | undefined;
let root: string;
let stateDir: string;
const host = (name: string) => net!.hosts.find((h) => h.name === name)!;
const onHost = (name: string, p: string) => hostPath(host(name), p);
const edit = (file: string, from: string, to: string) => {
  const path = join(work, file);
  const text = readFileSync(path, 'utf8');
  if (!text.includes(from)) throw new Error(`${file} has no ${from}`);
  writeFileSync(path, text.replace(from, to));
};

/** psql from the controller's host against a test host's server, as the test clients would. */
function sql(machine: string, database: string, query: string): string {
  return execFileSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', host(machine).address, '-p', '5432', '-U', 'postgres', '-d', database, '-c', query], {
    encoding: 'utf8',
    env: { ...process.env, PGCONNECT_TIMEOUT: '5' },
  }).trim();
}
/** Row count and a checksum over every row, in id order. */
const fingerprint = (machine: string) => sql(machine, 'app_db', "SELECT count(*) || ' ' || md5(coalesce(string_agg(id || ':' || payload, ',' ORDER BY id), '')) FROM items");
const databaseExists = (machine: string) => sql(machine, 'postgres', "SELECT count(*) FROM pg_database WHERE datname = 'app_db'") === '1';
const snapshotsDir = () => join(stateDir, 'snapshots', 'stateful', 'app-db');
const snapshotFiles = () => (existsSync(snapshotsDir()) ? readdirSync(snapshotsDir()).filter((f) => f.endsWith('.snap')).sort() : []);
const sidecar = (file: string) => JSON.parse(readFileSync(sidecarOf(join(snapshotsDir(), file)), 'utf8'));
const generation = () => readFileSync(join(stateDir, 'deployments', 'stateful', 'current'), 'utf8').trim();

/** The postmaster of a host's PostgreSQL daemon and every process it started. */
function postgresPids(machine: string): number[] {
  const main = Number(readFileSync(onHost(machine, '/var/lib/strata/deployments/stateful/state/d.postgresql/data/postmaster.pid'), 'utf8').split('\n')[0]);
  const children = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return Number(readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]) === main;
      } catch {
        return false;
      }
    })
    .map(Number);
  return [main, ...children];
}
const running = (pid: number) => {
  try {
    return !/^\S+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'strata-stateful-'));
  cpSync(new URL('../fixtures/stateful', import.meta.url), work, { recursive: true });
  net = await testnetUp({ dir: join(work, 'testnet'), machines: ['db1', 'db2'], subnet: '127.0.26' });
  root = join(work, 'strata.yaml');
  stateDir = join(work, '.state');
});

afterAll(async () => {
  if (net) await testnetDown(net.dir);
  rmSync(work, { recursive: true, force: true });
});

describe('stateful services on real SSH hosts with PostgreSQL servers', () => {
  let before = '';
  const blob = randomBytes(64 * 1024);

  it('creates app-db in the server on db1 and runs its schema.sql there', async () => {
    const r = await cli('apply', root, '--state', stateDir, '-q');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(fingerprint('db1')).toBe(`0 ${createHash('md5').update('').digest('hex')}`);
    expect(databaseExists('db2')).toBe(false);
    expect(readFileSync(onHost('db1', '/var/lib/strata/deployments/stateful/items/s.app-db/db_state'), 'utf8')).toBe('present app_db created\n');
    expect(readFileSync(onHost('db1', '/var/lib/strata/deployments/stateful/state/s.reporter/count'), 'utf8').trim()).toBe('0');
    // The server runs as postgres with its cluster in the daemon's STATE_DIR.
    expect(statSync(onHost('db1', '/var/lib/strata/deployments/stateful/state/d.postgresql/data')).uid).not.toBe(0);
  });

  it('keeps the data written through psql and in STATE_DIR', () => {
    sql('db1', 'app_db', `INSERT INTO items SELECT g, md5(g::text) || repeat('x', g % 37) FROM generate_series(1, ${ROWS}) g`);
    before = fingerprint('db1');
    expect(before).toMatch(new RegExp(`^${ROWS} [0-9a-f]{32}$`));
    mkdirSync(onHost('db1', '/var/lib/strata/deployments/stateful/state/s.notes/data/sub dir'), { recursive: true });
    writeFileSync(onHost('db1', '/var/lib/strata/deployments/stateful/state/s.notes/data/sub dir/blob.bin'), blob);
    writeFileSync(onHost('db1', '/var/lib/strata/deployments/stateful/state/s.notes/data/empty'), '');
  });

  it('a move whose restore fails is rolled back: db1 serves every row, nothing is recorded', async () => {
    // An app_db already on db2 that pg_restore --clean cannot replace: a view holds on to its table.
    sql('db2', 'postgres', 'CREATE DATABASE app_db');
    sql('db2', 'app_db', 'CREATE TABLE items (id integer PRIMARY KEY, payload text); CREATE VIEW held AS SELECT * FROM items');
    edit('distribution.yaml', 'app-db: { machine: db1, container: postgresql }', 'app-db: { machine: db2, container: postgresql }');

    const r = await cli('apply', root, '--state', stateDir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/restore app-db on db2 failed/);
    expect(r.err).toMatch(/cannot drop table public.items because other objects depend on it/);
    expect(r.err).toMatch(/rolled back \d+ completed steps; the previous generation is running/);

    expect(fingerprint('db1')).toBe(before);
    expect(readFileSync(onHost('db1', '/var/lib/strata/deployments/stateful/items/s.app-db/db_state'), 'utf8')).toBe('present app_db existing\n');
    // The dependent runs again on db1 and found every row there.
    expect(readFileSync(onHost('db1', '/var/lib/strata/deployments/stateful/state/s.reporter/count'), 'utf8').trim()).toBe(String(ROWS));
    const status = await deploymentStatus('stateful', contextFor({ stateDir }));
    const db1 = status.machines.find((m) => m.machine === 'db1')!;
    expect(db1.items.find((i) => i.name === 'reporter')!.state).toBe('running');
    expect(db1.items.find((i) => i.name === 'app-db')!.state).toBe('present');
    expect(generation()).toBe('1');
    // db2's database was left alone: restores run in one transaction.
    expect(sql('db2', 'app_db', 'SELECT count(*) FROM items')).toBe('0');
    expect(existsSync(onHost('db2', '/var/lib/strata/deployments/stateful/items/s.app-db'))).toBe(false);
    // The snapshot taken for the move is kept.
    expect(snapshotFiles()).toHaveLength(1);
    sql('db2', 'postgres', 'DROP DATABASE app_db');
  });

  it('moving app-db and a stateful process to db2 carries every row and the STATE_DIR; db1 keeps its database', async () => {
    edit('distribution.yaml', 'notes: db1', 'notes: db2');
    const plan = await planDeployment(root, contextFor({ stateDir }));
    const at = (action: string, machine: string, name: string) => plan.steps.findIndex((s) => s.action === action && s.machine === machine && s.item.name === name);
    expect(at('snapshot', 'db1', 'app-db')).toBeGreaterThanOrEqual(0);
    expect(at('snapshot', 'db1', 'app-db')).toBeLessThan(at('deactivate', 'db1', 'app-db'));
    expect(at('activate', 'db2', 'app-db')).toBeLessThan(at('restore', 'db2', 'app-db'));
    expect(at('restore', 'db2', 'app-db')).toBeLessThan(at('activate', 'db1', 'reporter'));
    expect(at('restore', 'db2', 'notes')).toBeGreaterThan(at('activate', 'db2', 'notes'));

    const r = await cli('apply', root, '--state', stateDir);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/snapshot of app-db on db1 \(\d+(\.\d)? KiB\) stored in .*\.snap/);
    expect(generation()).toBe('2');

    expect(fingerprint('db2')).toBe(before);
    expect(readFileSync(onHost('db2', '/var/lib/strata/deployments/stateful/items/s.app-db/db_state'), 'utf8')).toBe('present app_db created\n');
    // Not dropped where it was.
    expect(databaseExists('db1')).toBe(true);
    expect(fingerprint('db1')).toBe(before);
    // The dependent started after the restore, against db2.
    expect(readFileSync(onHost('db1', '/var/lib/strata/deployments/stateful/state/s.reporter/count'), 'utf8').trim()).toBe(String(ROWS));

    const files = snapshotFiles();
    expect(files).toHaveLength(2);
    const newest = files[files.length - 1]!;
    expect(newest).toMatch(/^\d{8}T\d{6}\.\d{3}Z-gen2-db1\.snap$/);
    const meta = sidecar(newest);
    const bytes = readFileSync(join(snapshotsDir(), newest));
    expect(meta).toMatchObject({ deployment: 'stateful', service: 'app-db', machine: 'db1', item: 's.app-db', module: 'postgresql-database', generation: 2, reason: 'move', size: bytes.length });
    expect(meta.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(bytes.subarray(0, 5).toString()).toBe('PGDMP');

    // The process's STATE_DIR came along, and it was started again on it.
    expect(readFileSync(onHost('db2', '/var/lib/strata/deployments/stateful/state/s.notes/data/sub dir/blob.bin')).equals(blob)).toBe(true);
    expect(readFileSync(onHost('db2', '/var/lib/strata/deployments/stateful/state/s.notes/data/empty'), 'utf8')).toBe('');
    expect(readFileSync(onHost('db2', '/var/lib/strata/deployments/stateful/state/s.notes/journal'), 'utf8')).toBe('started on db1\nstarted on db2\n');
    const status = await deploymentStatus('stateful', contextFor({ stateDir }));
    expect(status.machines.find((m) => m.machine === 'db2')!.items.find((i) => i.name === 'notes')!.state).toBe('running');
    expect(readdirSync(join(stateDir, 'snapshots', 'stateful', 'notes')).filter((f) => f.endsWith('.snap'))).toHaveLength(1);
  });

  it('strata snapshot stores one now; strata restore puts it back, only with --yes', async () => {
    const taken = await cli('snapshot', root, '--state', stateDir, '--service', 'app-db');
    expect(taken.code).toBe(0);
    const file = /stored in (\S+\.snap)/.exec(taken.out)![1]!;
    expect(taken.out).toMatch(/^app-db on db2: snapshot stored in /);
    expect(sidecar(file.split('/').pop()!)).toMatchObject({ machine: 'db2', reason: 'manual', generation: 2 });

    sql('db2', 'app_db', 'DELETE FROM items WHERE id > 100');
    const unconfirmed = await cli('restore', root, '--state', stateDir, '--service', 'app-db', '--latest');
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.err).toMatch(/overwrites the data of app-db on db2; run again with --yes/);
    expect(sql('db2', 'app_db', 'SELECT count(*) FROM items')).toBe('100');

    const r = await cli('restore', root, '--state', stateDir, '--service', 'app-db', '--from', file, '--yes');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^app-db on db2: restored from /);
    expect(fingerprint('db2')).toBe(before);

    const notStateful = await cli('snapshot', root, '--state', stateDir, '--service', 'reporter');
    expect(notStateful.code).toBe(2);
    expect(notStateful.err).toMatch(/reporter is not stateful/);
    expect((await cli('restore', root, '--state', stateDir, '--service', 'nope', '--yes')).code).toBe(2);

    // The drift probe asks the server: the database is there, so app-db has not drifted.
    const report = await deploymentStatus('stateful', contextFor({ stateDir }));
    const db = report.machines.find((m) => m.machine === 'db2')!.items.find((i) => i.name === 'app-db')!;
    expect(db.state).toBe('present');
    expect(db.drift).toBeUndefined();
  });

  it('removing app-db snapshots it first, keeps its database, and keeps the newest snapshotsKept', async () => {
    writeFileSync(join(work, 'services.yaml'), readFileSync(join(work, 'services.yaml'), 'utf8').replace(/  app-db:[\s\S]*?(?=  notes:)/, ''));
    edit('distribution.yaml', '  app-db: { machine: db2, container: postgresql }\n  reporter: db1\n', '');
    const plan = await planDeployment(root, contextFor({ stateDir }));
    expect(plan.steps.map((s) => `${s.action} ${s.machine}/${s.item.name}`)).toEqual(['deactivate db1/reporter', 'snapshot db2/app-db', 'deactivate db2/app-db']);

    const r = await cli('apply', root, '--state', stateDir, '-q');
    expect(r.code).toBe(0);
    expect(databaseExists('db2')).toBe(true);
    expect(fingerprint('db2')).toBe(before);
    // Four were taken (failed move, move, by hand, removal); snapshotsKept: 3.
    const files = snapshotFiles();
    expect(files).toHaveLength(3);
    expect(sidecar(files[2]!)).toMatchObject({ machine: 'db2', reason: 'remove', generation: 3 });
    expect(sidecar(files[0]!).reason).toBe('move');
  });

  it('stopping the test hosts stops their PostgreSQL servers', async () => {
    const pids = [...postgresPids('db1'), ...postgresPids('db2')];
    // PostgreSQL starts and ends short-lived workers: the servers themselves must be among the running.
    expect(pids.filter(running).length).toBeGreaterThan(2);
    await testnetDown(net!.dir);
    net = undefined;
    expect(pids.filter(running)).toEqual([]);
  });
});
