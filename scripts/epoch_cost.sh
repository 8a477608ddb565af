#!/usr/bin/env bash
# The training epoch's cost with and without the digits in other styles, interleaved (issue 25's
# bar: at most 1.25x the CPU-seconds of MNIST alone). Prints each run's epoch lines; compare the
# CPU-s of the same epoch across the two settings. Usage: bash scripts/epoch_cost.sh [ROUNDS]
set -euo pipefail
rounds=${1:-3}
for round in $(seq "$rounds"); do
    for share in 0 0.18; do
        dir=$(mktemp -d)
        echo "round $round, --written_share=$share:"
        python -m mnist_keras.train --epochs 2 --written_share="$share" --model_dir "$dir" --noresume \
            --progress none 2>/dev/null | grep -E '^(Data|Epoch)'
        rm -rf "$dir"
    done
done
