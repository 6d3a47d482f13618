/** The name a service's address is given under in its dependents' environment: `hello-world-server` → `HELLO_WORLD_SERVER`. */
export function envPrefix(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/** A postgresql-database service's database: its name with "-" as "_" (a safe name stays a safe SQL identifier). */
export function databaseName(service: string): string {
  return service.replace(/-/g, '_');
}
