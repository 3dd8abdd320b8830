#!/bin/sh
# The Debian packages some tests need (amsynth: a real VST2 plugin; chromium: the browser checks of the
# reports; xvfb, xauth: a virtual display for plugins that want one; gcc: the small test plugins).
# Installs the missing ones when it can (root with apt-get); exits 0 when all are installed, 1 otherwise
# (the tests that need a missing one then skip with a line naming the package).
PACKAGES="amsynth chromium xvfb xauth gcc"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages for the tests:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq $missing >/dev/null && exit 0
    echo "apt-get could not install$missing; the tests that need them skip"
    exit 1
fi
echo "system packages missing:$missing (not root, or no apt-get): the tests that need them skip; install with: sudo apt-get install$missing"
exit 1
