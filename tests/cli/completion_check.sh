#!/usr/bin/env bash
# `muonlab completion bash`, sourced into bash and asked as bash asks it
# (COMP_WORDS, COMP_CWORD): subcommands after the commands that have them,
# every option each command's --help lists, presets after --preset, file
# names (nothing of its own) after an option taking a path, muonlab's own
# commands after launch's --; the zsh form loads bashcompinit first.
#   completion_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1

# shellcheck disable=SC1090
source <("$muonlab" completion bash)

# What completing the last word offers.
offers() {
  COMP_WORDS=(muonlab "$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _muonlab
  echo "${COMPREPLY[*]}"
}

expect() {
  local got=$1 expected=$2 what=$3
  [[ $got == "$expected" ]] || { echo "FAIL: $what offered '$got', expected '$expected'" >&2; exit 1; }
}

expect "$(offers tr)" "train" "muonlab tr"
expect "$(offers bench o)" "optim" "muonlab bench o"
expect "$(offers train --ch)" "--check" "muonlab train --ch"
expect "$(offers data prepare --tok)" "--tokenizer" "muonlab data prepare --tok"
expect "$(offers generate --preset tiny-)" "tiny-gpt2 tiny-llama tiny-mla-moe" "muonlab generate --preset tiny-"
expect "$(offers data prepare --tokenizer b)" "byte" "muonlab data prepare --tokenizer b"
# --set keys: the config's for train and sweep, the model's fields where a model is built.
expect "$(offers train --set run.ste)" "run.steps=" "muonlab train --set run.ste"
expect "$(offers sweep spec.toml --set optimizer.ns_st)" "optimizer.ns_steps=" "muonlab sweep --set optimizer.ns_st"
expect "$(offers model info --set n_lay)" "n_layer=" "muonlab model info --set n_lay"
expect "$(offers train --config "")" "" "muonlab train --config (a file)"
expect "$(offers train configs/)" "" "muonlab train PATH (a file)"
expect "$(offers launch -n 2 -- tr)" "train" "muonlab launch -n 2 -- tr (each rank's command)"
expect "$(offers launch -n 2 -- train --ch)" "--check" "muonlab launch -n 2 -- train --ch"
# A flag takes no value: the word after it is completed as a subcommand.
expect "$(offers --version tr)" "train" "muonlab --version tr"
# A subcommand's name given as an option's value is that value, not the command.
expect "$(offers eval --preset train --de)" "--device" "muonlab eval --preset train --de"

# Every subcommand and option --help lists, offered where it applies.
help_subcommands() { "$muonlab" "$@" --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }'; }
# The long names heading the lines of --help's Options section (its examples name other commands' options).
help_options() {
  "$muonlab" "$@" --help | sed -n '/^Options:/,/^$/p' | awk '/^  -/ { print $1 }' | tr ',' '\n' | grep -- '^--' | sort -u
}
for command in $(help_subcommands); do
  [[ " $(offers "") " == *" $command "* ]] || { echo "FAIL: muonlab --help lists '$command', not completed" >&2; exit 1; }
  for sub in $(help_subcommands "$command"); do
    [[ " $(offers "$command" "") " == *" $sub "* ]] ||
      { echo "FAIL: muonlab $command --help lists '$sub', not completed" >&2; exit 1; }
  done
done
checked=0
for command in "train" "sweep" "eval" "generate" "bench optim" "data prepare" "launch"; do
  read -r -a words <<<"$command"
  offered=" $(offers "${words[@]}" --) "
  for option in $(help_options "${words[@]}"); do
    [[ $offered == *" $option "* ]] ||
      { echo "FAIL: muonlab $command --help lists $option, not completed (offered:$offered)" >&2; exit 1; }
    checked=$((checked + 1))
  done
done

zsh_script=$("$muonlab" completion zsh)
[[ $(head -1 <<<"$zsh_script") == "autoload -U +X bashcompinit && bashcompinit" ]] ||
  { echo "FAIL: the zsh script does not load bashcompinit first" >&2; exit 1; }
echo "PASS: completion offers every subcommand and the $checked options --help lists"
