import { createApiServer, listen } from '../../controller/httpApi.ts';
import { Controller } from '../../controller/controller.ts';
import { loadControllerConfig } from '../../controller/loadConfig.ts';
import { createLogger } from '../../controller/logger.ts';
import { readSecret } from '../../git/secrets.ts';
import { gitSourceFor } from '../../controller/gitSource.ts';
import { UsageError } from '../../errors.ts';
import { parse, type Io } from '../io.ts';

export const help = `strata controller --config FILE [--listen HOST:PORT]
  Runs the GitOps controller: keeps every deployment in FILE equal to its Git branch,
  serves /healthz, /readyz, /metrics, the deployments API and webhooks (docs/controller.md).
  Logs JSON lines (pretty in a terminal). SIGTERM or SIGINT: finish or roll back the
  transition in flight, then exit.
  --listen HOST:PORT   overrides the configuration's listen address`;

export async function run(argv: string[], _io: Io): Promise<number> {
  const { values } = parse(argv, { config: { type: 'string', short: 'c' }, listen: { type: 'string' } });
  if (!values.config) throw new UsageError('strata controller needs --config FILE');
  const config = loadControllerConfig(values.config);
  if (values.listen) config.listen = values.listen;
  const log = createLogger(config.logLevel);
  const apiToken = config.apiToken ? readSecret(config.apiToken, 'apiToken') : undefined;
  if (!apiToken) log.warn('no apiToken configured: the mutating API endpoints (sync, suspend, resume, rollback) are off');

  const controller = new Controller(config, { log, sourceFor: gitSourceFor });
  const server = createApiServer(controller, { log, apiToken });
  const address = await listen(server, config.listen);
  controller.start();
  log.info({ deployments: config.deployments.map((d) => d.name), stateDir: config.stateDir }, `controller listening on http://${address.host}:${address.port}`);

  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info(`${signal}: finishing the work in flight, then exiting`);
      resolve();
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
  await controller.stop();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections?.();
  log.info('controller stopped');
  return 0;
}
