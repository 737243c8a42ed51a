#!/usr/bin/env bash
# Installs Mesa's lavapipe (the Vulkan software adapter) from the bookworm-backports suite
# of the Debian mirror this machine already uses. Does nothing when a lavapipe ICD from
# Mesa 25 or newer is already installed.
set -euo pipefail

# Root runs apt directly; anyone else goes through sudo.
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-adapter: run as root (or install sudo)" >&2; exit 1; }
  SUDO="sudo"
fi

lavapipe_version() {
  dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true
}

current=$(lavapipe_version)
case "$current" in
  2[5-9].*|[3-9][0-9].*) echo "lavapipe already installed (mesa-vulkan-drivers $current)"; exit 0 ;;
esac

# Read the mirror from the sources this machine already has (deb822 or one-line format).
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  mirror=$(awk '/^URIs:/ {print $2; exit}' "$f")
  case "$mirror" in *security*|"") mirror="" ;; *) break ;; esac
done
if [ -z "$mirror" ]; then
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    mirror=$(awk '$1=="deb" && $3 ~ /^bookworm$/ {print $2; exit}' "$f")
    [ -n "$mirror" ] && break
  done
fi
if [ -z "$mirror" ]; then
  echo "install-adapter: could not find the Debian mirror in /etc/apt/sources.list.d/" >&2
  exit 1
fi

echo "deb $mirror bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/wgrnn-bookworm-backports.list >/dev/null
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers libvulkan1
echo "installed mesa-vulkan-drivers $(lavapipe_version)"
