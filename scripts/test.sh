#!/usr/bin/env bash
# The whole test suite, as a developer or CI runs it: installs what the tests need (RabbitMQ from
# Debian, Kafka jars from Maven Central; idempotent and fast when done), then every crate's unit
# and integration tests. Broker tests start and stop their own brokers through scripts/brokers.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }

if [[ ${MQ_BENCH_SKIP_BROKERS:-0} != 1 ]]; then
  step "brokers: install (idempotent)"
  scripts/brokers/rabbitmq.sh install
  scripts/brokers/kafka.sh install
  scripts/brokers/nats.sh install # nats-server + natscli, built with go install
  scripts/brokers/rocketmq.sh install
  # With the brokers installed, a broker test that cannot reach its broker fails instead of skipping.
  export MQ_BENCH_REQUIRE_BROKERS=1
fi

if [[ ${MQ_BENCH_SKIP_CHROMIUM:-0} != 1 ]]; then
  # harness/bench/tests/report.rs renders report.html in headless Chromium (Debian's package).
  step "chromium: install (idempotent)"
  if ! command -v chromium >/dev/null 2>&1; then
    ((EUID == 0)) || { echo "chromium: install needs root (apt-get install -y chromium)" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    if [[ "$(apt-cache policy chromium 2>/dev/null)" != *"Candidate: "[0-9]* ]]; then
      timeout 600 apt-get update -q >/dev/null
    fi
    timeout 900 apt-get install -y -q chromium >/tmp/mq-bench-apt-chromium.$$.log 2>&1 \
      || { tail -20 /tmp/mq-bench-apt-chromium.$$.log >&2; exit 1; }
  fi
  chromium --version >&2
  # With chromium installed, the report rendering test fails instead of skipping.
  export MQ_BENCH_REQUIRE_CHROMIUM=1
fi

if [[ ${MQ_BENCH_SKIP_K8S_VALIDATE:-0} != 1 ]]; then
  # harness/bench/tests/k8s.rs validates `bench k8s` manifests offline with kubernetes-validate
  # (PyPI), which ships the Kubernetes API schemas (kubeconform would fetch them at run time).
  step "kubernetes-validate: install (idempotent)"
  if ! command -v kubernetes-validate >/dev/null 2>&1; then
    timeout 300 python3 -m pip install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0' >&2
  fi
  kubernetes-validate --version >&2
  # Installed: the manifest test fails instead of skipping.
  export MQ_BENCH_REQUIRE_K8S_VALIDATE=1
fi

step "cargo test --workspace"
cargo test --workspace --locked --no-fail-fast

step "README: measured tables come from runs (scripts/readme-tables.py --check)"
scripts/readme-tables.py --check
