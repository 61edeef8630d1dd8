#!/bin/sh
# Install what `s390-gaccess oracle` needs on Debian/Ubuntu: the s390x cross
# compiler (guest build), QEMU's s390x system emulator (package qemu-system-misc)
# and Hercules. Run as root. Nothing is downloaded besides these packages.
set -eu
need=""
command -v s390x-linux-gnu-gcc >/dev/null 2>&1 || need="$need gcc-s390x-linux-gnu binutils-s390x-linux-gnu"
command -v qemu-system-s390x >/dev/null 2>&1 || need="$need qemu-system-misc"
command -v hercules >/dev/null 2>&1 || need="$need hercules"
if [ -z "$need" ]; then
    echo "oracle/install.sh: everything is installed"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends keeps Hercules' and QEMU's GUI helpers out.
apt-get install -y -qq --no-install-recommends $need
