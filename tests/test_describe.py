"""``photocaption describe`` (issue 29): one photo's alt text from the file manager, printed, spoken or in a window."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, exiftool
from desktop_app.cli import main
from desktop_app.describe import NO_SPEECH
from desktop_app.metadata.record import PERSON, CaptionRecord
from desktop_app.metadata.store import WriteOptions, write_caption

PERSONS = "Chelsea the cat asleep on the red sofa."


def describe(capsys, *args) -> tuple[int, str, str]:
    status = main(["describe", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


def test_describe_says_the_caption_who_wrote_it_how_sure_and_where_and_writes_nothing(samples, capsys):
    photos = sorted(samples.glob("*.jpg"))
    before = {p: p.read_bytes() for p in photos}
    status, out, _ = describe(capsys, "--json", *photos)
    assert status == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in rows] == list(map(str, photos))
    status, text, _ = describe(capsys, *photos)
    assert status == 0
    blocks = text.split(f"{samples}/")[1:]
    for row, block in zip(rows, blocks):  # the --jsonl result fields, and the same facts in words
        assert row["status"] == "described" and row["written_by"] == "model" and row["caption"]
        assert {"score", "alternatives", "keywords", "confidence", "needs_review"} <= set(row)
        assert f"caption:    {row['caption']}" in block
        assert f"written by: the model {row['model']}" in block
        assert f"keywords:   {', '.join(row['keywords'])}" in block
        assert ("the model is not sure of it" in block) == row["needs_review"]
        assert "stored in:  not in the photo yet" in block
    assert {p: p.read_bytes() for p in photos} == before


def test_confidence_in_words_a_listener_can_weigh():
    """Whatever the model now makes of the samples, each case reads as it should."""
    import numpy as np

    from desktop_app.captioning.captioner import CaptionResult
    from desktop_app.describe import Description

    def said(confidence, needs_review):
        result = CaptionResult("A cat.", ["a", "cat"], -1.0, [], np.zeros((2, 1)), ["cat"], confidence, needs_review)
        return Description(ROOT / "cat.jpg", "A cat.", model_id="m", result=result).confidence

    assert said(0.32, True) == "the model is not sure of it (confidence 32%); a person should check it"
    assert said(None, True) == "the model is not sure of it; a person should check it"
    assert said(0.81, False) == "the model is fairly sure of it (confidence 81%)"
    assert said(0.004, True) == "the model is not sure of it (confidence under 1%); a person should check it"
    assert said(None, False) == "the model cannot say how sure it is"
    assert Description(ROOT / "cat.jpg", "Chelsea.", by_person=True).confidence == "a person wrote it"


def test_a_persons_caption_is_shown_as_it_is_and_the_model_is_not_even_loaded(samples, tmp_path, capsys):
    photo = samples / "chelsea.jpg"
    write_caption(photo, CaptionRecord(PERSONS, PERSON, keywords=["Chelsea"]), WriteOptions())
    before = photo.read_bytes()
    status, out, err = describe(capsys, "--model", tmp_path / "no-model-here", photo)
    assert status == 0, err
    assert f"caption:    {PERSONS}" in out and "written by: a person" in out
    assert "keywords:   Chelsea" in out and "confidence: a person wrote it" in out
    assert "stored in:  XMP, EXIF" in out
    assert photo.read_bytes() == before


def test_exit_codes_say_what_went_wrong_in_plain_words(samples, tmp_path, capsys):
    empty, broken = tmp_path / "empty.jpg", tmp_path / "broken.jpg"
    empty.write_bytes(b"")
    broken.write_bytes(b"\xff\xd8 this is not a JPEG")
    status, out, err = describe(capsys, samples / "coffee.jpg", empty, broken)
    assert status == 1
    assert "caption:" in out  # the readable one is still described
    assert f"{empty}: cannot read it: the file is empty (0 bytes)" in err
    assert f"{broken}: " in err and "Traceback" not in err
    for bad in ([tmp_path / "missing.jpg"], [samples], ["--window", "--json", samples / "coffee.jpg"]):
        status, _, err = describe(capsys, *bad)
        assert status == 2 and "photocaption describe: error:" in err
    with pytest.raises(SystemExit) as no_photo:  # argparse's own refusal
        main(["describe"])
    assert no_photo.value.code == 2


def test_speak_uses_the_desktop_speech_service_or_says_there_is_none(samples, tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    heard = tmp_path / "heard.txt"
    fake = bin_dir / "spd-say"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {heard}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    status, out, _ = describe(capsys, "--speak", samples / "chelsea.jpg")
    assert status == 0
    said = heard.read_text().splitlines()
    assert said[0] == "--"
    caption = out.split("caption:    ")[1].splitlines()[0]
    assert said[1].startswith(f"chelsea.jpg: {caption} Written by the model")
    fake.unlink()
    status, out, err = describe(capsys, "--speak", samples / "chelsea.jpg")
    assert status == 1 and "caption:" in out and NO_SPEECH in err


def _window(qtbot, photos, model=None):
    from desktop_app.describe import ModelOnce
    from desktop_app.gui.describe_window import DescribeWindow

    window = DescribeWindow(photos, model or ModelOnce())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: len(window.descriptions) == len(photos), timeout=30_000)
    return window


def test_the_window_shows_the_caption_copies_it_and_names_every_control(samples, qtbot):
    import threading

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication, QWidget

    from desktop_app.describe import ModelOnce, describe_photo

    threads = []

    class Watched(ModelOnce):
        def __call__(self):
            threads.append(threading.get_ident())
            return super().__call__()

    photo = samples / "chelsea.jpg"
    expected = describe_photo(photo, ModelOnce())
    window = _window(qtbot, [photo], Watched())
    assert threads and threading.get_ident() not in threads  # the model ran off the UI thread
    assert window.caption.toPlainText() == expected.caption and window.caption.isReadOnly()
    assert window.caption.accessibleName() == "Caption"
    assert window.keywords.text() == ", ".join(expected.keywords)
    assert ("the model is not sure of it" in window.about.toPlainText()) == expected.result.needs_review
    assert not window.picture.pixmap().isNull()
    qtbot.mouseClick(window.copy, Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == expected.caption
    focusable = [w for w in window.findChildren(QWidget) if w.isVisibleTo(window)
                 and w.focusPolicy() & Qt.FocusPolicy.TabFocus]
    assert {window.caption, window.about, window.keywords, window.copy, window.write, window.edit} <= set(focusable)
    assert [w for w in focusable if not (w.accessibleName() or getattr(w, "text", lambda: "")())] == []
    chain, w = [], window.caption  # Tab reaches every control, caption first
    while w not in chain:
        chain.append(w)
        w = w.nextInFocusChain()
    assert set(focusable) <= set(chain)


def test_the_window_writes_a_machine_caption_but_never_over_a_persons(samples, qtbot, monkeypatch):
    from PySide6.QtCore import QProcess, Qt

    machine, person = samples / "coffee.jpg", samples / "chelsea.jpg"
    write_caption(person, CaptionRecord(PERSONS, PERSON), WriteOptions())
    before = person.read_bytes()
    window = _window(qtbot, [machine, person])
    qtbot.mouseClick(window.write, Qt.MouseButton.LeftButton)
    caption = window.caption.toPlainText()
    assert exiftool(machine)["XMP-dc:Description"] == caption
    assert "Stored in: XMP, EXIF" in window.about.toPlainText() and not window.write.isEnabled()
    qtbot.mouseClick(window.next, Qt.MouseButton.LeftButton)
    assert window.caption.toPlainText() == PERSONS and "Written by a person" in window.about.toPlainText()
    assert not window.write.isEnabled()
    started = []
    monkeypatch.setattr(QProcess, "startDetached", lambda program, args: started.append([program, *args]) or (True, 1))
    qtbot.mouseClick(window.edit, Qt.MouseButton.LeftButton)
    assert started and started[0][-2:] == ["gui", str(samples)]
    assert person.read_bytes() == before


def test_the_window_says_why_when_the_model_cannot_be_loaded(samples, tmp_path, qtbot):
    from desktop_app.describe import ModelOnce

    window = _window(qtbot, [samples / "chelsea.jpg"], ModelOnce(tmp_path / "no-model-here"))
    assert window.caption.toPlainText().startswith("could not describe it: ")
    assert not window.copy.isEnabled() and not window.write.isEnabled() and window.close_button.isEnabled()


DESKTOP_ENTRY = ROOT / "packaging" / "photocaption-describe.desktop"
NO_DESKTOP_FILE_UTILS = "desktop-file-utils is not installed (Debian: apt install desktop-file-utils)"


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason=NO_DESKTOP_FILE_UTILS)
def test_the_desktop_entry_passes_desktop_file_validate_without_a_remark():
    run = subprocess.run(["desktop-file-validate", str(DESKTOP_ENTRY)], capture_output=True, text=True)
    assert (run.returncode, run.stdout + run.stderr) == (0, "")
    entry = dict(line.split("=", 1) for line in DESKTOP_ENTRY.read_text().splitlines() if "=" in line)
    assert entry["Name"] == "Describe with photocaption" and entry["Exec"] == "photocaption describe --window %F"
    assert {"image/jpeg", "image/png", "image/webp", "image/tiff", "image/heic"} <= set(entry["MimeType"].split(";"))


@pytest.mark.skipif(shutil.which("update-desktop-database") is None, reason=NO_DESKTOP_FILE_UTILS)
def test_the_readmes_install_command_adds_open_with_and_leaves_the_default_viewer_alone(tmp_path):
    section = (ROOT / "README.md").read_text().split("## Describe one photo", 1)[1]
    command = section.split("```sh\n", 1)[1].split("```", 1)[0].strip()
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("XDG_DATA_HOME", None)
    run = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    applications = home / ".local" / "share" / "applications"
    installed = applications / "photocaption-describe.desktop"
    program = next(line for line in installed.read_text().splitlines() if line.startswith("Exec=")).split()[0][5:]
    assert Path(program).is_absolute() and os.access(program, os.X_OK)  # no PATH needed in the desktop session
    assert "image/jpeg=photocaption-describe.desktop;" in (applications / "mimeinfo.cache").read_text()
    assert not (applications / "defaults.list").exists() and not (home / ".config" / "mimeapps.list").exists()
    validate = subprocess.run(["desktop-file-validate", str(installed)], capture_output=True, text=True)
    assert validate.returncode == 0, validate.stdout
