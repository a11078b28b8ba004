#!/usr/bin/env bash
# The CUDA checks on a real GPU (issue 15), as one script. Run from the project root:
#   tests/gpu/run.sh
# On this (CPU-only) machine first build the PyCUDA wheel once:
#   ../shared/tools/gpu-wheels.sh      (leaves it in ./.whl; carry .whl to the GPU machine)
# On the GPU machine the script installs .whl/*.whl into /tmp/site when PyCUDA is missing,
# runs the CUDA suite against PyCUDA (TRACEGRAD_TEST_CUDA=pycuda) and
# `python -m benchmarks --device cuda --quick`, and prints one summary.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import pycuda.driver" 2>/dev/null; then
  if [ ! -d .whl ] && [ -x ../shared/tools/gpu-wheels.sh ]; then
    ../shared/tools/gpu-wheels.sh >/dev/null || { echo "SUMMARY: building the PyCUDA wheel failed"; exit 2; }
  fi
  "$PY" -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
    || { echo "SUMMARY: installing .whl/*.whl failed"; exit 2; }
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
# PyCUDA builds kernels with nvcc
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
command -v nvcc >/dev/null || { echo "SUMMARY: nvcc not found (PyCUDA needs it)"; exit 2; }
export TRACEGRAD_TEST_CUDA=pycuda
export TRACEGRAD_CACHE_DIR=${TRACEGRAD_CACHE_DIR:-/tmp/tgcache-gpu}
"$PY" -c "import tracegrad; assert tracegrad.cuda.is_available(), tracegrad.cuda.why_unavailable(); print('GPU:', tracegrad.cuda.get_device_name())" \
  || { echo "SUMMARY: CUDA is not available"; exit 2; }

start=$(date +%s)
"$PY" -m pytest -q -p no:cacheprovider tests/test_cuda_runtime.py tests/test_cuda_program.py \
  tests/test_cuda_tensors.py 2>&1 | tee /tmp/tg-gpu-tests.log | tail -25
tests_rc=${PIPESTATUS[0]}
"$PY" -m benchmarks --device cuda --quick 2>&1 | tee /tmp/tg-gpu-bench.log
bench_rc=${PIPESTATUS[0]}
echo
echo "SUMMARY: tests $(tail -1 /tmp/tg-gpu-tests.log) (rc $tests_rc); benchmarks rc $bench_rc;" \
     "$(( $(date +%s) - start )) s"
[ "$tests_rc" = 0 ] && [ "$bench_rc" = 0 ]
