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
for entry in photocaption photocaption-describe; do  # the app; "Describe with photocaption" in Open With
    sed "s#^Exec=photocaption#Exec=$target/photocaption#" "$here/$entry.desktop" \
        > "$prefix/share/applications/$entry.desktop"
done
command -v update-desktop-database >/dev/null && update-desktop-database "$prefix/share/applications" || true
cp "$here/photocaption.svg" "$prefix/share/icons/hicolor/scalable/apps/photocaption.svg"
echo "installed to $target; run 'photocaption gui' or find photocaption in the applications menu"
