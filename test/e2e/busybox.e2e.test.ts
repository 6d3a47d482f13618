import { platformSuite } from '../support/platformSuite.ts';

// Hosts whose /bin/sh and every command are BusyBox's (src/testnet/hostShell.ts).
platformSuite('busybox', '127.0.70');
