# Sourced by the .ci scripts. require WHAT ITEM...: each ITEM is "root", a
# command, or "git" for a git checkout (besides the command). When any is
# missing, exits the script: 1 under CI=true (a prerequisite never skips
# there), else 0 with a SKIP line naming what WHAT needs.
require() {
  local what=$1 item missing=()
  shift
  for item in "$@"; do
    case $item in
      root) [ "$(id -u)" = 0 ] || missing+=(root) ;;
      *) command -v "$item" >/dev/null || missing+=("$item") ;;
    esac
    if [ "$item" = git ] && command -v git >/dev/null; then
      git rev-parse --git-dir >/dev/null 2>&1 || missing+=("a git checkout")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local msg
  msg="$what needs $(printf '%s, ' "${missing[@]}" | sed 's/, $//')"
  if [ "${CI:-}" = true ]; then
    echo "$msg (CI=true: never skipped)" >&2
    exit 1
  fi
  echo "SKIP: $msg"
  exit 0
}
