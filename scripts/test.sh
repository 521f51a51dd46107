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
  # With the brokers installed, a broker test that cannot reach its broker fails instead of skipping.
  export MQ_BENCH_REQUIRE_BROKERS=1
fi

step "cargo test --workspace"
cargo test --workspace --locked
