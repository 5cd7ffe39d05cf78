# The code only PyTorch's CUDA builds compile (files that test
# MUONLAB_TORCH_CUDA) must compile on machines without them too: each such
# file is compiled here, syntax only, with that branch on, against this
# LibTorch's CUDA headers (Debian's ship them without the CUDA libraries)
# and the CUDA toolkit's. Skipped (77) where either is missing.
# Arguments: the muonlab executable (unused), the source tree, the C++
# compiler, LibTorch's include directories (:-separated), and the C++
# standard they need (17 or 20; default 17).
set -euo pipefail
src=$2 compiler=$3 standard=${5:-17}
IFS=':' read -r -a torch_includes <<<"$4"

cuda_include=""
for dir in "${CUDA_HOME:-/usr/local/cuda}/include" /usr/local/cuda/include /usr/include; do
  [[ -f $dir/cuda_runtime_api.h ]] && cuda_include=$dir && break
done
[[ -n $cuda_include ]] || { echo "SKIP: no CUDA toolkit headers (cuda_runtime_api.h)"; exit 77; }
has_graph_header=""
for dir in "${torch_includes[@]}"; do [[ -f $dir/ATen/cuda/CUDAGraph.h ]] && has_graph_header=yes; done
[[ -n $has_graph_header ]] || { echo "SKIP: LibTorch's headers have no ATen/cuda"; exit 77; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The one header a CPU LibTorch leaves out of c10/cuda: its build settings.
mkdir -p "$work/c10/cuda/impl"
printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' >"$work/c10/cuda/impl/cuda_cmake_macros.h"

flags=(-std=c++"$standard" -fsyntax-only -DMUONLAB_TORCH_CUDA=1 -DFMT_HEADER_ONLY=1 -I"$src/src" -I"$work")
for dir in "${torch_includes[@]}"; do flags+=(-I"$dir"); done
flags+=(-I"$cuda_include")

cd "$src"
mapfile -t files < <(grep -rl --include='*.cpp' 'MUONLAB_TORCH_CUDA' src/muonlab | sort)
[[ ${#files[@]} -gt 0 ]] || { echo "FAIL: no file tests MUONLAB_TORCH_CUDA"; exit 1; }
# One translation unit for all of them, as the library's unity build
# compiles them: LibTorch's and CUDA's headers are parsed once, not per file.
for file in "${files[@]}"; do echo "#include \"$PWD/$file\""; done >"$work/all_cuda_sources.cpp"
"$compiler" "${flags[@]}" "$work/all_cuda_sources.cpp"
printf 'compiles: %s\n' "${files[@]}"
echo "PASS: ${#files[@]} files compile with MUONLAB_TORCH_CUDA against CUDA headers ($cuda_include)"
