# Shared by the mutant runners (props/mutants.sh, formal/mutants.sh, formal/z3/mutants.sh,
# formal/relacy/mutants.sh): a mutant is a line `name|src-file|perl -0 substitution` that
# must match once; it is applied to a scratch copy of the tree, never to the tree itself.
# Source this file; it defines functions only.

# mutant_lines FILE...: the mutant lines of the files (blank lines and # comments skipped).
mutant_lines() {
  local f line
  for f in "$@"; do
    [ -f "$f" ] || continue
    while IFS= read -r line; do
      [[ -z "$line" || "$line" == \#* ]] && continue
      printf '%s\n' "$line"
    done <"$f"
  done
}

# mutant_copy ROOT DIR: DIR becomes a fresh copy of the files git tracks in ROOT, as they
# are in its working tree.
mutant_copy() {
  rm -rf "$2"
  mkdir -p "$2"
  git -C "$1" ls-files -z | (cd "$1" && xargs -0 cp --parents -t "$2")
}

# mutant_apply FILE SUBST: applies the substitution in place; fails unless it matched.
mutant_apply() {
  perl -0pi -e "\$n = ($2); END { exit(\$n ? 0 : 1) }" "$1"
}
