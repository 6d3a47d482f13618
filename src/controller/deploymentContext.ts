import type { Context, Services } from '../api/context.ts';
import type { CredentialPolicy } from '../targets/credentials.ts';
import { connectionSettings, type DeploymentConfig } from './config.ts';

/**
 * The context every operation the controller runs for a deployment gets (reconcile, recovery,
 * rollback, abandon, adopt): its state directory, the process's services, its connection
 * settings and credential policy, and `controller: true`, so that hints name the API route rather
 * than a CLI command. One place, so no operation runs with less.
 */
export function deploymentContext(d: DeploymentConfig, stateDir: string, services: Services): Context & { credentials: CredentialPolicy } {
  return { stateDir, services, controller: true, ...connectionSettings(d) };
}
