import { StrataError } from '../errors.ts';
import { isKnownCode } from '../errors/codes.ts';

/** What a controller answers to an operation (docs/controller.md, "HTTP API"). */
export interface ControllerAnswer {
  ok?: boolean;
  message?: string;
  generation?: number;
}

/**
 * POSTs `body` as JSON to a controller's API route with the bearer token, and returns its answer.
 * A refusal becomes a StrataError with the controller's own code (an operation's answer carries
 * it as `code`, a request's as `error.code`), so the command exits as it would have locally;
 * a code this strata does not know is CONTROLLER_ERROR. `refusal` starts the message ("the
 * controller refused the rollback").
 */
export async function postToController(url: string, route: string, token: string, body: unknown, refusal: string): Promise<ControllerAnswer> {
  let res: Response;
  try {
    res = await fetch(new URL(route, url), { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  } catch (e) {
    throw new StrataError('CONTROLLER_UNREACHABLE', `cannot reach the controller at ${url}: ${(e as Error).message}`);
  }
  const answer = (await res.json().catch(() => ({}))) as ControllerAnswer & { code?: unknown; error?: { code?: unknown; message?: unknown } };
  if (res.ok) return answer;
  const code = [answer.error?.code, answer.code].find((c): c is string => typeof c === 'string' && isKnownCode(c)) ?? 'CONTROLLER_ERROR';
  const why = typeof answer.error?.message === 'string' ? answer.error.message : (answer.message ?? res.statusText);
  throw new StrataError(code, `${refusal} (HTTP ${res.status}): ${why}`);
}
