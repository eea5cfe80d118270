"""The headless CLI end to end: captions land in metadata, bad photos are named, nothing is damaged."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import DEFAULT_BUNDLE, exiftool, image_data

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, index: Path):
    env = {**os.environ, "PHOTOCAPTION_INDEX": str(index)}
    return subprocess.run([sys.executable, "-m", "desktop_app", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env)


def readme_run_command() -> str:
    """The second line of README.md's "Set up and run" commands: the one that runs the main job."""
    section = (ROOT / "README.md").read_text().split("## Set up and run", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()[1]


def test_readme_run_command_captions_copies_and_leaves_the_clone_alone(pristine_samples, tmp_path):
    """The README's run command, word for word, in a scratch checkout holding the shipped samples:
    it captions copies in the home folder and changes nothing in the checkout."""
    checkout = tmp_path / "checkout"
    shutil.copytree(pristine_samples, checkout / "resources" / "samples")
    before = {p.name: p.read_bytes() for p in (checkout / "resources" / "samples").iterdir()}
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "PHOTOCAPTION_INDEX": str(tmp_path / "index.sqlite"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(["bash", "-c", readme_run_command()], cwd=checkout, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "captioned 5, skipped 0, failed 0 of 5 photos" in run.stderr
    assert {p.name: p.read_bytes() for p in (checkout / "resources" / "samples").iterdir()} == before
    copies = home / "photocaption-samples"
    assert sorted(p.name for p in copies.iterdir()) == sorted([*before, "chelsea-small.png.xmp"])
    for photo in copies.glob("*.jpg"):
        assert exiftool(photo)["XMP-dc:Description"]
        assert image_data(photo) == image_data(pristine_samples / photo.name)


def test_default_bundle_captions_the_samples(samples, tmp_path):
    """The main job on a copy of the samples: captions in every place, pixels kept, resumable, searchable."""
    assert (DEFAULT_BUNDLE / "manifest.json").is_file(), "the default model bundle must ship in resources/models/default"
    before = {p.name: image_data(p) for p in samples.glob("*.jpg")}
    run = run_cli("caption", samples, "--jsonl", tmp_path / "out.jsonl", index=tmp_path / "index.sqlite")
    assert run.returncode == 0, run.stderr
    assert "captioned 5, skipped 0, failed 0 of 5 photos" in run.stderr
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(lines) == 5 and all(line["caption"] and line["status"] == "captioned" for line in lines)
    for photo in samples.glob("*.jpg"):
        tags = exiftool(photo)
        assert tags["XMP-dc:Description"] == tags["XMP-iptcCore:AltTextAccessibility"] == tags["IFD0:ImageDescription"]
        assert tags["XMP-pcap:Source"] == "machine"
        assert image_data(photo) == before[photo.name]
    assert exiftool(samples / "chelsea-small.png.xmp")["XMP-dc:Description"]
    again = run_cli("caption", samples, index=tmp_path / "index.sqlite")
    assert "captioned 0, skipped 5" in again.stderr  # resume: already captioned by this model
    word = lines[0]["caption"].split()[1].strip(".").lower()
    found = run_cli("search", word, index=tmp_path / "index.sqlite")
    assert lines[0]["path"] in found.stdout


def test_bad_photos_are_named_and_the_batch_goes_on(tiny_bundle, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.new("RGB", (320, 240), "orange").save(folder / "good.jpg")
    good = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("this is a text file")
    bomb = bytearray(good)
    sof = bomb.index(b"\xff\xc0")
    bomb[sof + 5:sof + 9] = (30000).to_bytes(2, "big") * 2
    (folder / "bomb.jpg").write_bytes(bytes(bomb))
    Image.new("RGB", (320, 240), "teal").save(folder / "locked.jpg")
    (folder / "locked.jpg").chmod(0o444)
    snapshot = {p.name: p.read_bytes() for p in folder.iterdir()}
    run = run_cli("caption", folder, "--model", tiny_bundle[0], index=tmp_path / "index.sqlite")
    assert run.returncode == 1  # some failed
    assert "captioned 1, skipped 0, failed 5 of 6 photos" in run.stderr
    for name, reason in [("truncated.jpg", "corrupt or truncated"), ("zero.jpg", "not an image"),
                         ("notes.jpg", "not an image"), ("bomb.jpg", "refused"), ("locked.jpg", "read-only")]:
        assert any(name in line and reason in line for line in run.stderr.splitlines()), (name, run.stderr)
    for path in folder.iterdir():
        if path.name != "good.jpg":
            assert path.read_bytes() == snapshot[path.name]
    assert exiftool(folder / "good.jpg")["XMP-dc:Description"]
    assert not list(folder.glob(".*photocaption-tmp"))


def test_dry_run_writes_nothing_and_show_reports(tiny_bundle, samples, tmp_path):
    before = {p: p.read_bytes() for p in samples.iterdir()}
    run = run_cli("caption", samples, "--model", tiny_bundle[0], "--dry-run", index=tmp_path / "i.sqlite")
    assert run.returncode == 0 and run.stdout.count("\n") == 5
    assert {p: p.read_bytes() for p in samples.iterdir()} == before
    run_cli("caption", samples / "coffee.jpg", "--model", tiny_bundle[0], "--write", "sidecar", index=tmp_path / "i.sqlite")
    show = run_cli("show", samples / "coffee.jpg", index=tmp_path / "i.sqlite")
    assert "stored in: sidecar coffee.jpg.xmp" in show.stdout and "written by: model" in show.stdout


def test_missing_or_broken_model_is_a_clear_error(tmp_path, samples):
    run = run_cli("caption", samples, "--model", tmp_path / "nope", index=tmp_path / "i.sqlite")
    assert run.returncode == 2 and "error: model bundle folder not found" in run.stderr
    assert "Traceback" not in run.stderr


BAD_ARGUMENTS = [  # (arguments, what stderr must say); {missing}, {samples}, {empty}, {tmp} are filled in
    (["caption", "{missing}"], "photocaption caption: error: no such file or folder: {missing}"),
    (["caption", "{samples}", "--beam", "0"], "argument --beam: must be 1 or more, not 0"),
    (["caption", "{samples}", "--beam", "-1"], "argument --beam: must be 1 or more, not -1"),
    (["caption", "{samples}", "--beam", "three"], "argument --beam: 'three' is not a whole number"),
    (["caption", "{samples}", "--max-length", "0"], "argument --max-length: must be 1 or more, not 0"),
    (["caption", "{samples}", "--batch-size", "0"], "argument --batch-size: must be 1 or more, not 0"),
    (["caption", "{samples}", "--threads", "-2"], "argument --threads: must be 0 or more, not -2"),
    (["caption", "{samples}", "--write", "cloud"], "argument --write: invalid choice: 'cloud'"),
    (["caption", "{empty}"], "photocaption caption: error: no photos in {empty}"),
    (["caption", "{tmp}"], "no photos in {tmp} (its sub-folders are read with -r)"),
    (["caption", "{samples}", "--jsonl", "{missing}/out.jsonl"], "the folder {missing} does not exist"),
    (["caption", "{samples}", "--jsonl", "{empty}"], "--jsonl {empty} is a folder"),
    (["show", "{missing}"], "photocaption show: error: no such file or folder: {missing}"),
    (["show", "{samples}"], "photocaption show: error: show takes photos, not folders ({samples})"),
    (["scan", "{missing}"], "photocaption scan: error: no such file or folder: {missing}"),
    (["scan", "{samples}/coffee.jpg"], "photocaption scan: error: not a folder: {samples}/coffee.jpg"),
    (["search", "cat", "--limit", "0"], "argument --limit: must be 1 or more, not 0"),
    (["search", "cat", "--scan", "{missing}"], "photocaption search: error: no such file or folder: {missing}"),
    (["gui", "{missing}"], "photocaption gui: error: no such file or folder: {missing}"),
    (["serve", "--port", "70000"], "argument --port: must be from 0 to 65535, not 70000"),
    (["serve", "--max-upload-mb", "0"], "argument --max-upload-mb: must be above 0, not 0"),
    ([], "the following arguments are required: COMMAND"),
]


def test_bad_arguments_exit_2_in_words_before_the_model_loads(samples, tmp_path, monkeypatch, capsys):
    """Every bad argument: exit 2 and a sentence, no traceback, and the model is never opened."""
    from desktop_app import cli
    from desktop_app.captioning.captioner import Captioner

    monkeypatch.setenv("PHOTOCAPTION_INDEX", str(tmp_path / "index.sqlite"))
    monkeypatch.setattr(Captioner, "open", classmethod(lambda *a, **k: pytest.fail("the model was loaded")))
    (tmp_path / "empty").mkdir()
    places = {"missing": tmp_path / "missing", "samples": samples, "empty": tmp_path / "empty", "tmp": tmp_path}
    for arguments, message in BAD_ARGUMENTS:
        argv = [a.format(**places) for a in arguments]
        try:
            status = cli.main(argv)
        except SystemExit as exc:  # argparse's own refusals
            status = exc.code
        err = capsys.readouterr().err
        assert status == 2, (argv, err)
        assert message.format(**places) in err, (argv, err)
        assert "Traceback" not in err
    assert not (tmp_path / "index.sqlite").exists()


def test_show_names_what_it_cannot_read_and_goes_on(samples, tmp_path, capsys):
    from desktop_app import cli

    (tmp_path / "notes.txt").write_text("hello")
    locked = tmp_path / "locked.jpg"
    locked.write_bytes((samples / "coffee.jpg").read_bytes())
    locked.chmod(0)
    status = cli.main(["show", str(tmp_path / "notes.txt"), str(locked), str(samples / "coffee.jpg")])
    captured = capsys.readouterr()
    assert status == 1
    assert f"{tmp_path / 'notes.txt'}: not a photo" in captured.err
    if os.geteuid() != 0:  # root reads any file
        assert f"{locked}: cannot read its caption: permission denied" in captured.err
    assert f"{samples / 'coffee.jpg'}: no caption" in captured.out


def test_help_shows_real_defaults_only():
    from desktop_app import cli

    parser = cli.build_parser()
    text = parser._subparsers._group_actions[0].choices["caption"].format_help()
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "(default: the bundled model)" in text and "(default: 3)" in text
    assert "where the model runs" in text  # --provider says what it does


def test_show_into_a_closed_pipe_ends_quietly(samples, tmp_path):
    """`photocaption show ... | head -1`: no traceback when the reader stops early."""
    env = {**os.environ, "PHOTOCAPTION_INDEX": str(tmp_path / "i.sqlite")}
    process = subprocess.Popen([sys.executable, "-m", "desktop_app", "show", *[str(samples / "coffee.jpg")] * 3000],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env)
    process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0 and "Traceback" not in err, err
