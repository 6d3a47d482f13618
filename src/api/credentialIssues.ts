import type { ModelIssue } from '../errors.ts';
import type { Models } from '../model/types.ts';
import { fieldName } from '../model/fieldPath.ts';
import { allowedFile, refusedFileMessage, refusedLocalMessage, type CredentialPolicy } from '../targets/credentials.ts';

/**
 * Under the controller: every model field that names something on the controller host and that
 * the deployment's credential policy does not allow, at the field's file:line:column — a local
 * machine without localMachines, an ssh.identity or ssh.knownHosts outside its allowedFiles.
 * A refused file is never looked at, so the message is the same whether it exists or not.
 */
export function credentialIssues(models: Models, policy: CredentialPolicy): ModelIssue[] {
  const issues: ModelIssue[] = [];
  const at = (path: (string | number)[], message: string) => issues.push({ ...models.locate('network', path), field: fieldName(path), message });
  for (const [name, m] of Object.entries(models.machines)) {
    if (m.target === 'local') {
      if (!policy.localMachines) at(['machines', name, 'target'], refusedLocalMessage(policy.deployment));
      continue;
    }
    for (const field of ['identity', 'knownHosts'] as const) {
      const path = m.ssh?.[field];
      if (path !== undefined && allowedFile(path, policy.allowedFiles) === undefined) at(['machines', name, 'ssh', field], refusedFileMessage(`ssh.${field}`, policy));
    }
  }
  return issues.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
}
