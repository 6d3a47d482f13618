import { platformSuite } from '../support/platformSuite.ts';

// Hosts whose login shell and /bin/sh are dash (src/testnet/hostShell.ts).
platformSuite('dash', '127.0.71');
