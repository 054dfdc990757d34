#!/usr/bin/env bash
# End-to-end on a local Kubernetes in Docker (kind): create a cluster, load the step images,
# install Argo Workflows and the astroflow chart, submit the TEC demo, wait, print its status.
#
# Needs docker, kind, kubectl, helm and the argo CLI on a machine that may run privileged
# containers. It cannot run on this project's CI machines (no privileged containers, no image
# registry, no network beyond package registries); there the same templates are validated
# offline and every step image runs for real under tests/integration.
#
#   make images && bash scripts/kind-e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=${CLUSTER:-astroflow}
ARGO_VERSION=${ARGO_VERSION:-v4.0.5}
NS=${NS:-astroflow}
TAG=${TAG:-dev}

for tool in docker kind kubectl helm argo; do
  command -v "$tool" >/dev/null || { echo "kind-e2e: $tool is required" >&2; exit 2; }
done

kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER"
for image in $(docker images --format '{{.Repository}}:{{.Tag}}' | grep "^astroflow-.*:$TAG$"); do
  kind load docker-image --name "$CLUSTER" "$image"
done

kubectl create namespace argo --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -n argo -f "https://github.com/argoproj/argo-workflows/releases/download/${ARGO_VERSION}/quick-start-minimal.yaml"
kubectl -n argo rollout status deployment/workflow-controller --timeout=300s

# a simulated sector on the node's disk, mounted read-only by the chart as the raw data
DATA=$(mktemp -d)
.venv/bin/astroflow simulate tec --out "$DATA/tec" --n-tces 40
docker cp "$DATA/tec" "$CLUSTER-control-plane:/srv/astroflow-raw"

# the chart is packaged with the templates of argo/ (the repository keeps them there only)
.venv/bin/astroflow render tec --out argo --chart helm/astroflow
helm upgrade --install tess helm/astroflow -n "$NS" --create-namespace \
  -f helm/astroflow/sites/tess-vetting.yaml \
  --set image.registry=docker.io/library --set image.tag="$TAG" \
  --set storage.rawData.create=true --set storage.rawData.hostPath=/srv/astroflow-raw \
  --set storage.run.accessModes='{ReadWriteOnce}'

argo submit -n "$NS" --from workflowtemplate/astroflow-tec -p run-name=kind-demo --wait
argo get -n "$NS" @latest
