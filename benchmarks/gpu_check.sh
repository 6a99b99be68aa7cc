#!/usr/bin/env bash
# The GPU acceptance check lives in acceptance/ (it checks the CUDA paths; it is no benchmark). This path, named in
# older instructions, runs it.
exec bash "$(dirname "$0")/../acceptance/gpu_check.sh" "$@"
