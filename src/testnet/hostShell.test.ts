import { describe, expect, it } from 'vitest';
import { checkHostShell, rootLoginShell, type HostShell } from './hostShell.ts';

describe('rootLoginShell', () => {
  it("replaces root's login shell only", () => {
    const passwd = 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nrootless:x:7:7::/home/r:/bin/bash\n';
    expect(rootLoginShell(passwd, '/bin/sh')).toBe('root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nrootless:x:7:7::/home/r:/bin/bash\n');
  });
});

describe('checkHostShell', () => {
  it('refuses an unknown variant', () => {
    expect(() => checkHostShell('zsh' as HostShell)).toThrow(/unknown test host shell "zsh"/);
    expect(() => checkHostShell('busybox')).not.toThrow();
  });
});
