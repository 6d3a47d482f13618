import { type GitAuth, type HttpClient } from 'isomorphic-git';
import httpClient from 'isomorphic-git/http/node';
import { readSecret } from './secrets.ts';
import { SshBridge, type SshExchange } from './sshTransport.ts';
import type { GitRepositoryConfig } from './options.ts';
import type { RepoUrl } from './url.ts';

/** How isomorphic-git reaches a remote: its HTTP client (or the SSH bridge), URL and credentials. */
export interface Transport {
  http: HttpClient;
  url: string;
  onAuth?: () => GitAuth | undefined;
  onAuthFailure?: () => GitAuth;
  close(): Promise<void>;
}

/** Opens the transport of a remote; secrets are read now, used by isomorphic-git, never logged. */
export async function openTransport(r: RepoUrl, config: GitRepositoryConfig, label: string, onExchange?: (e: SshExchange) => void): Promise<Transport> {
  if (r.kind === 'ssh') {
    const key = config.sshKey;
    const privateKey = key?.env !== undefined ? readSecret(key, `the SSH key for ${label}`) : undefined;
    const bridge = new SshBridge({ remote: r, label, hostKey: config.hostKey, knownHosts: config.knownHosts, identityFile: key?.file, privateKey, onExchange });
    return { http: bridge, url: bridge.url, close: () => bridge.close() };
  }
  if (r.kind !== 'http') throw new Error('a local repository has no transport');
  const username = config.username ?? r.username ?? 'git';
  const password = config.password ? readSecret(config.password, `the password for ${label}`) : r.password;
  return {
    http: httpClient,
    url: r.url,
    onAuth: () => (password === undefined ? undefined : { username, password }),
    onAuthFailure: () => ({ cancel: true }),
    close: async () => {},
  };
}
