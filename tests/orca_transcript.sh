#!/bin/bash
# What Orca says while a person reviews captions with the keyboard (issue 29), written to a file, not a speaker:
# speech-dispatcher's generic module appends each utterance to the transcript; ALSA plays to its null device.
# Needs (Debian): xvfb xauth dbus at-spi2-core orca speech-dispatcher openbox xdotool; run from the repository
# root with the venv's photocaption installed:
#   dbus-run-session -- xvfb-run -a -s "-screen 0 1366x768x24" tests/orca_transcript.sh [OUT.txt]
# Orca needs a window manager (without one no window is active and Orca reads nothing). Steps: the app opens the
# sample photos; Caption All; Go to Caption; a long caption typed; Tab away and back; Settings; Tab to "Run on";
# Down; Escape; then a review pass: Go to Photos, Right through three photos, one caption edited, Write Selected, Write
# All. Lines starting "===" mark the keys pressed.
set -u
out=$(realpath "${1:-orca-transcript.txt}")
root=$(pwd)
work=$(mktemp -d /tmp/orca-transcript.XXXXXX)
mkdir -p "$work/home/.config/speech-dispatcher/modules" "$work/run" "$work/log"
chmod 700 "$work/run"
cp -r "$root/resources/samples" "$work/samples" && rm -f "$work/samples/"*.md
printf 'pcm.!default {\n  type null\n}\n' > "$work/home/.asoundrc"
cat > "$work/home/.config/speech-dispatcher/speechd.conf" <<EOF
LogDir "$work/log"
AudioOutputMethod "alsa"
AddModule "transcript" "sd_generic" "transcript.conf"
DefaultModule transcript
DefaultLanguage "en"
EOF
cat > "$work/home/.config/speech-dispatcher/modules/transcript.conf" <<EOF
GenericExecuteSynth "echo \'\$DATA\' >> $out; echo >> $out"
AddVoice "en" "MALE1" "en"
GenericLanguage "en" "en" "utf-8"
EOF
: > "$out"
export HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" XDG_RUNTIME_DIR="$work/run"
export QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1 QT_QPA_PLATFORM=xcb PHOTOCAPTION_INDEX="$work/index.sqlite"
step() { echo "=== $1" >> "$out"; }
key() { xdotool key "$@"; }

openbox > "$work/log/openbox.out" 2>&1 &
sleep 2
orca --replace > "$work/log/orca.out" 2>&1 &
orca_pid=$!
sleep 6
step "photocaption gui SAMPLES"
"$root/.venv/bin/photocaption" gui "$work/samples" > "$work/log/app.out" 2>&1 &
app_pid=$!
sleep 10
xdotool windowactivate "$(xdotool search --name photocaption | head -1)"
sleep 3
step "Ctrl+Shift+R: Caption All"; key ctrl+shift+r; sleep 15
step "Ctrl+2: Go to Caption"; key ctrl+2; sleep 4
step "Ctrl+A and a long caption typed"; key ctrl+a
xdotool type --delay 5 "An astronaut in an orange flight suit smiles in front of an American flag and a model of the space shuttle, holding her white helmet."
sleep 3
step "Tab away, Shift+Tab back"; key Tab; sleep 3; key shift+Tab; sleep 5
step "Ctrl+comma: Settings"; key ctrl+comma; sleep 5
step "Tab, Tab: to Run on"; key Tab; sleep 2; key Tab; sleep 3
step "Down"; key Down; sleep 3
step "Escape"; key Escape; sleep 3
step "Ctrl+1: Go to Photos"; key ctrl+1; sleep 4
for n in 1 2 3; do step "Right: next photo ($n)"; key Right; sleep 4; done
step "Ctrl+2: Go to Caption, End, typed ' Taken at home.'"; key ctrl+2; sleep 3; key End
xdotool type --delay 5 " Taken at home."
sleep 3
step "Ctrl+S: Write Selected to Photos"; key ctrl+s; sleep 6
step "Ctrl+Shift+S: Write All to Photos"; key ctrl+shift+s; sleep 8
step "end"
kill "$app_pid" "$orca_pid" 2>/dev/null
wait "$app_pid" 2>/dev/null
# each utterance comes with a stray "n" (an escaped line end) and no line end; the letters echoed as typed go
sed -i -E '/^$/d; /^===/!s/n$//; /^(.|space|comma|dot) $/d' "$out"
echo "transcript: $out (work files in $work)"
