import { describe, expect, it } from 'vitest';
import { isLocalUrl, parseRepoUrl } from './url.ts';

describe('isLocalUrl', () => {
  // The controller once decided this by prefix (`/`, `.`, `file://`), which took a bare
  // relative path for a remote while parseRepoUrl clones it from the directory.
  it.each(['repo', 'repos/app', 'app.git', './app', '../app', '/srv/git/app', 'file:///srv/git/app'])('%s is a directory on this host', (url) => {
    expect(isLocalUrl(url)).toBe(true);
    expect(parseRepoUrl(url, '/work').kind).toBe('local');
  });

  it.each(['https://git.example.org/app.git', 'ssh://git@git.example.org/app.git', 'git@git.example.org:app.git', 'git.example.org:app.git'])('%s is remote', (url) => {
    expect(isLocalUrl(url)).toBe(false);
  });

  it('a URL that names nothing is not local', () => {
    expect(isLocalUrl('')).toBe(false);
    expect(isLocalUrl('gopher://example.org/app')).toBe(false);
  });
});
