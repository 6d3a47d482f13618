import { describe, expect, it } from 'vitest';
import { HttpError, parseRequestTarget, parseRollbackBody } from './httpRequest.ts';

const refusal = (f: () => unknown): { status: number; message: string } => {
  try {
    f();
  } catch (e) {
    if (e instanceof HttpError) return { status: e.status, message: e.message };
    throw e;
  }
  throw new Error('accepted');
};

describe('parseRequestTarget', () => {
  it('splits and decodes a path, ignoring the query and one trailing slash', () => {
    expect(parseRequestTarget('/api/deployments/web%2Dprod?x=%E0')).toEqual({ path: '/api/deployments/web%2Dprod', parts: ['api', 'deployments', 'web-prod'] });
    expect(parseRequestTarget('/healthz/').parts).toEqual(['healthz']);
    expect(parseRequestTarget('/').parts).toEqual(['']);
    expect(parseRequestTarget('http://controller:8080/readyz').parts).toEqual(['readyz']);
  });

  it('refuses, as 400, targets a URL parser or decoder would throw on, and control characters', () => {
    for (const target of ['//a:b/x', '/api//deployments', '/api/deployments/%E0%A4%A', '/%', '/%zz', '/a%00b', '/a%0Ab', '*', 'a:b', '', undefined, 'http://[::1/x']) {
      expect(refusal(() => parseRequestTarget(target)).status, String(target)).toBe(400);
    }
    expect(refusal(() => parseRequestTarget('/api/deployments/%E0%A4%A')).message).toMatch(/"%E0%A4%A" is not valid percent-encoded UTF-8/);
  });
});

describe('parseRollbackBody', () => {
  const parse = (s: string | Buffer) => parseRollbackBody(typeof s === 'string' ? Buffer.from(s) : s);

  it('takes {}, an empty body or {"to": N}', () => {
    expect(parse('')).toEqual({});
    expect(parse(' \n')).toEqual({});
    expect(parse('{}')).toEqual({});
    expect(parse('{"to": 12}')).toEqual({ to: 12 });
  });

  it('refuses every other body with a 400 that says what was wrong', () => {
    const cases: [string | Buffer, RegExp][] = [
      ['null', /must be a JSON object .*got null/],
      ['12', /got a number/],
      ['"x"', /got a string/],
      ['[1]', /got an array/],
      ['true', /got a boolean/],
      ['{"to": "3"}', /"to" must be a generation number.*got "3"/],
      ['{"to": null}', /got null/],
      ['{"to": 0}', /"to" must be/],
      ['{"to": 1.5}', /"to" must be/],
      ['{"to": 1e400}', /"to" must be/],
      ['{"to": 9007199254740993}', /"to" must be/],
      ['{"to": 2, "force": true}', /unknown field "force"/],
      ['{"__proto__": {"to": 1}}', /unknown field "__proto__"/],
      ['{"to": 1', /not valid JSON/],
      [Buffer.from([0x7b, 0xff, 0x7d]), /not UTF-8/],
    ];
    for (const [body, message] of cases) {
      const r = refusal(() => parse(body));
      expect(r.status, String(body)).toBe(400);
      expect(r.message, String(body)).toMatch(message);
    }
  });
});
