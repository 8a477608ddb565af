#!/usr/bin/env bash
# REST and gRPC load, batching off and on, against python -m mnist_keras.serve on 127.0.0.1.
#   scripts/serving_load_table.sh [BASE_PATH] [REQUESTS] [CLIENTS]
# BASE_PATH: an export's --serving_dir (default saved_models/mnist). Server and load share the machine.
set -euo pipefail
base=${1:-saved_models/mnist}; requests=${2:-2000}; clients=${3:-1,8,16,32}
grpc_port=${GRPC_PORT:-18500}; rest_port=${REST_PORT:-18501}
for batching in off on; do
  extra=()
  [[ $batching == on ]] && extra=(--enable_batching "--batching_parameters_file=$base/batching.config")
  python -m mnist_keras.serve --model_base_path="$base" --port="$grpc_port" --rest_api_port="$rest_port" \
    "${extra[@]}" > "/tmp/serve-load-$batching.log" 2>&1 &
  server=$!
  for _ in $(seq 120); do grep -q "gRPC at" "/tmp/serve-load-$batching.log" && break; sleep 1; done
  cpu0=$(awk '{print $14+$15}' "/proc/$server/stat")
  echo "== batching $batching: REST"
  python scripts/load.py --url="http://127.0.0.1:$rest_port/v1/models/mnist:predict" \
    --requests="$requests" --clients="$clients" || true
  echo "== batching $batching: gRPC"
  python scripts/load.py --grpc="127.0.0.1:$grpc_port" --requests="$requests" --clients="$clients" || true
  cpu1=$(awk '{print $14+$15}' "/proc/$server/stat")
  echo "server CPU-s (user+sys) for both runs: $(( (cpu1 - cpu0) / $(getconf CLK_TCK) ))"
  kill "$server"; wait "$server" || true
done
