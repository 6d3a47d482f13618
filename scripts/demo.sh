#!/usr/bin/env bash
# Deploys the hello-world example onto three local machines (no SSH, no root needed),
# shows its status, and asks the client for its greeting.
set -euo pipefail
cd "$(dirname "$0")/../examples/hello-world"
strata() { node ../../bin/strata.js "$@"; }

echo "== strata validate"; strata validate
echo; echo "== strata plan"; strata plan
echo; echo "== strata apply"; strata apply
echo; echo "== strata status"; strata status
echo; echo "== asking the client on test1 (127.0.2.1:5001), which asks the server on test2"
node -e "require('net').connect(5001, '127.0.2.1').on('data', (d) => process.stdout.write('client says: ' + d))"
cat <<'EOT'

Next, from examples/hello-world/:
  move the server:  edit distribution.yaml (hello-world-server: test3), then
                    node ../../bin/strata.js plan && node ../../bin/strata.js apply
  roll back:        node ../../bin/strata.js rollback
  stop everything:  node ../../bin/strata.js destroy
The recorded state is in examples/hello-world/.strata, beside strata.yaml, so any directory
finds it: from the repository's top, node bin/strata.js destroy examples/hello-world/strata.yaml
EOT
