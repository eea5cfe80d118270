#!/bin/sh
# Install this photocaption app folder for the current user: the command, the menu entry, the icon.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix=${PREFIX:-$HOME/.local}
target="$prefix/opt/photocaption"
mkdir -p "$prefix/opt" "$prefix/bin" "$prefix/share/applications" "$prefix/share/icons/hicolor/scalable/apps"
if [ "$here" != "$target" ]; then
    rm -rf "$target"
    cp -a "$here" "$target"
fi
ln -sf "$target/photocaption" "$prefix/bin/photocaption"
sed "s#^Exec=photocaption#Exec=$target/photocaption#" "$here/photocaption.desktop" \
    > "$prefix/share/applications/photocaption.desktop"
cp "$here/photocaption.svg" "$prefix/share/icons/hicolor/scalable/apps/photocaption.svg"
echo "installed to $target; run 'photocaption gui' or find photocaption in the applications menu"
