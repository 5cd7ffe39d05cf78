# `cmake --install` gives a relocatable package: installed, then moved
# elsewhere, its bin/muonlab finds the installed GPT-2 tokenizer beside
# itself, its CMake files name no build or source path, only library headers
# are there, and a consumer project builds against it with find_package and
# runs (tests/install/consumer: muonlab::optim alone, and muonlab::muonlab).
# Arguments: the muonlab executable, the source tree, the build tree.
set -euo pipefail
muonlab=$1 src=$2 build=$3
source "$src/tests/check_lib.sh"
make_scratch_dir install

cmake --install "$build" --prefix "$work/staged" >"$work/install.log"
mv "$work/staged" "$work/moved"
prefix=$work/moved

fail() { echo "FAIL: $*"; exit 1; }

# Only the library's headers.
[[ -f $prefix/include/muonlab/optimizers/muon.h ]] || fail "include/muonlab/optimizers/muon.h not installed"
for private in include/muonlab/cli include/muonlab/python include/muonlab/core/pch.h; do
  [[ ! -e $prefix/$private ]] || fail "$private installed"
done

# Relocatable: no absolute path of the build or source tree in the CMake files.
if grep -rlF -e "$src" -e "$build" "$prefix/lib/cmake/muonlab"; then
  fail "the CMake files above name the source or build tree"
fi
# muonlab::optim needs LibTorch alone (no fmt, toml++, SQLite, PCRE2 targets).
if grep -E "fmt::|tomlplusplus|SQLite|PCRE2|nlohmann" "$prefix/lib/cmake/muonlab/muonlabOptimTargets.cmake"; then
  fail "muonlab::optim's interface names the dependencies above"
fi

# The installed program finds share/muonlab/gpt2 from its own location: run
# from an empty folder, without MUONLAB_DATA_DIR, far from the source tree.
[[ -f $prefix/share/muonlab/gpt2/encoder.json ]] || fail "share/muonlab/gpt2 not installed (run scripts/fetch-data)"
mkdir "$work/elsewhere"
ids=$(cd "$work/elsewhere" && printf 'Hello world' | env -u MUONLAB_DATA_DIR "$prefix/bin/muonlab" data encode --tokenizer gpt2)
[[ $ids == "15496 995" ]] || fail "moved bin/muonlab encodes 'Hello world' as '$ids', not GPT-2's '15496 995'"
echo "moved bin/muonlab: 'Hello world' -> $ids"

# The bash completion, where bash-completion looks, as the installed program writes it.
completion=$prefix/share/bash-completion/completions/muonlab
[[ -f $completion ]] || fail "share/bash-completion/completions/muonlab not installed"
cmp -s "$completion" <("$prefix/bin/muonlab" completion bash) ||
  fail "the installed completion differs from what bin/muonlab completion bash writes"

# A consumer project, configured against the moved prefix only.
torch_dir=$(sed -n 's/^Torch_DIR:PATH=//p' "$build/CMakeCache.txt")
cmake -S "$src/tests/install/consumer" -B "$work/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DTorch_DIR="$torch_dir" >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; fail "the consumer project does not configure"; }
cmake --build "$work/consumer" >"$work/build.log" 2>&1 ||
  { tail -50 "$work/build.log"; fail "the consumer project does not build"; }
(cd "$work/elsewhere" && "$work/consumer/optim_consumer" && "$work/consumer/library_consumer") ||
  fail "a consumer program failed"
echo "PASS: installed, moved, found by find_package; both consumers ran"
