import { describe, expect, it } from 'vitest';
import { ModelError } from '../errors.ts';
import { parseYamlFile } from './yamlSource.ts';

// Files that are not models (the controller's configuration, testnet's network files) are read
// with the models' parser and limits, so none of them accepts what a model file would refuse.
describe('parseYamlFile', () => {
  it('reads plain YAML 1.2 data', () => {
    expect(parseYamlFile('c.yaml', 'stateDir: /var/lib/strata\ndeployments: [{ name: app }]\n').value).toEqual({ stateDir: '/var/lib/strata', deployments: [{ name: 'app' }] });
  });

  it.each([
    ['a tag outside the core schema', 'secret: !!js/function "() => 1"\n'],
    ['a duplicate key', 'listen: a\nlisten: b\n'],
    ['nesting deeper than a model may', `a: ${'['.repeat(500)}${']'.repeat(500)}\n`],
    ['a control character', 'name: "a\u0007"\n'],
  ])('refuses %s with file:line:column', (_, text) => {
    let thrown: unknown;
    try {
      parseYamlFile('controller.yaml', text);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ModelError);
    expect((thrown as ModelError).message).toMatch(/^controller\.yaml:\d+:\d+: /);
  });
});
