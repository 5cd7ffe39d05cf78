# The layers of src/muonlab, bottom up, and the layers each may include
# (docs/design.md, Layers). Fails naming every include of a layer that is not
# below the includer's, and every folder that is no layer.
# Arguments: the muonlab executable (unused), the source tree.
set -euo pipefail
src=$2

declare -A may_include=(
  [core]="core"
  [optimizers]="core optimizers"
  [models]="core optimizers models"
  [data]="core data"
  [analysis]="core optimizers models data analysis"
  [distributed]="core optimizers models data analysis distributed"
  [training]="core optimizers models data analysis distributed training"
  [sweep]="core optimizers models data analysis distributed training sweep"
  [bench]="core optimizers models data analysis distributed training bench"
  [cli]="core optimizers models data analysis distributed training sweep bench cli"
  [python]="core optimizers analysis python"
)

violations=0 includes=0
cd "$src/src/muonlab"
for folder in */; do
  layer=${folder%/}
  if [[ -z ${may_include[$layer]:-} ]]; then
    echo "src/muonlab/$layer: not a layer; add it to tests/layers_check.sh and docs/design.md"
    violations=$((violations + 1))
    continue
  fi
  while IFS=: read -r file line included; do
    includes=$((includes + 1))
    target=${included%%/*}
    if [[ " ${may_include[$layer]} " != *" $target "* ]]; then
      echo "src/muonlab/$file:$line: $layer includes muonlab/$included, from a layer it may not use ($target)"
      violations=$((violations + 1))
    fi
  done < <(grep -rnoE '^#include "muonlab/[a-z_0-9]+/[a-z_0-9]+\.h"' "$layer" |
           sed -E 's/#include "muonlab\/(.*)"/\1/')
done
if ((violations > 0)); then
  echo "FAIL: $violations includes across layers"
  exit 1
fi
echo "PASS: $includes includes, all from a layer to itself or one below"
