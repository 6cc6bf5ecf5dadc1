# shellcheck shell=bash
# Sourced by the tools that need root: `mnedc_become_root "$@"` re-runs the
# calling script as root through sudo when this user is not root and sudo
# exists; otherwise it says in one line what to run, and exits.
mnedc_become_root() {
  [[ $(id -u) -eq 0 ]] && return 0
  local script
  script=$(realpath "$0")
  if command -v sudo >/dev/null 2>&1; then
    # Keep the caller's proxy settings: apt and the tests may need them.
    exec sudo --preserve-env=http_proxy,https_proxy,no_proxy,HTTP_PROXY,HTTPS_PROXY,NO_PROXY,CI \
      "$script" "$@"
  fi
  local command=$script
  (($# > 0)) && command+=" $*"
  echo "$(basename "$0") needs root and sudo is not installed: run it as root, e.g. su -c '$command'" >&2
  exit 1
}
