export type { Testnet, TestnetHost } from './types.ts';
export { testnetUp, testnetDown } from './testnet.ts';
export { readTestnet } from './state.ts';
export { hostPath } from './hostPath.ts';
export type { HostShell } from './hostShell.ts';
