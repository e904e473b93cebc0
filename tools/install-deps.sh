#!/usr/bin/env bash
# Installs the named Debian packages that are missing. As root it runs apt-get update (a fresh
# machine's package lists are empty) and apt-get install; otherwise it names what to install.
set -euo pipefail
missing=()
for p in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "shardtx: missing Debian packages: ${missing[*]}" >&2
  echo "shardtx: run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "shardtx: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
