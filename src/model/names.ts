/** The name a service's address is given under in its dependents' environment: `hello-world-server` → `HELLO_WORLD_SERVER`. */
export function envPrefix(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}
