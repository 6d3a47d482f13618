import { envPrefix } from '../model/names.ts';

/**
 * The variables a binding to service `dep` sets in an item's environment all start with
 * `DEP_` (`DEP_HOST`, `DEP_PORT`, `DEP_PORT_<NAME>`, `DEP_ADDRESSES`; docs/models.md). The
 * manifest names them here, once, so the plan reads a binding's variables without knowing how
 * a service name becomes a variable prefix.
 */
export function bindingPrefix(dep: string): string {
  return envPrefix(dep);
}

/** The two variables of a binding that change when the bound service moves to other machines. */
export function bindingAddressKeys(dep: string): { host: string; addresses: string } {
  const prefix = bindingPrefix(dep);
  return { host: `${prefix}_HOST`, addresses: `${prefix}_ADDRESSES` };
}
