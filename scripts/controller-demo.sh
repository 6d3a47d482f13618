#!/usr/bin/env bash
# Starts the strata controller on the bundled hello-world example: a local Git repository
# (made here, under .strata-demo/) deployed to three local machines. No SSH, no root.
# Ctrl-C stops the controller and takes the example's services down again.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
demo=$top/.strata-demo
repo=$demo/repo
strata() { node "$top/bin/strata.js" "$@"; }

if [ ! -d "$repo/.git" ]; then
  mkdir -p "$repo"
  cp -r "$top/examples/hello-world/." "$repo/"
  rm -rf "$repo/.strata" "$repo/testnet"
  git -C "$repo" init -q -b main
  git -C "$repo" add -A
  git -C "$repo" -c user.name=strata-demo -c user.email=demo@strata.invalid commit -q -m "hello-world on three local machines"
fi

cat > "$demo/controller.yaml" <<EOT
# The demo controller: one deployment, read from the local repository $repo
stateDir: $demo/state
listen: 127.0.0.1:8080
logLevel: info
deployments:
  - name: hello-world
    repository: { url: $repo, branch: main }
    path: strata.yaml
    localMachines: true              # its machines are this host: trust the repository with it
EOT

cat <<EOT
strata controller demo: deploying $repo (branch main) to three local machines.

In another terminal, make a commit and watch it deploy within a second:
  cd $repo
  sed -i 's/hello-world-server: test2/hello-world-server: test3/' distribution.yaml
  git commit -qam "move the server to test3"
Then:
  curl -s localhost:8080/api/deployments/hello-world      # conditions, revisions, generation
  node $top/bin/strata.js history --deployment hello-world --state $demo/state
  node -e "require('net').connect(5001,'127.0.2.1').on('data',d=>process.stdout.write(d))"

Ctrl-C stops the controller and the example's services.
EOT

cleanup() {
  strata destroy --deployment hello-world --state "$demo/state" -q >/dev/null 2>&1 || true
}
trap cleanup EXIT
strata controller --config "$demo/controller.yaml" || true
