/**
 * Where a secret is read from: a file holding it, or an environment variable holding it, never
 * the value itself (docs/security.md). The controller's configuration schema produces these.
 */
export type SecretRef = { file: string; env?: undefined } | { env: string; file?: undefined };
