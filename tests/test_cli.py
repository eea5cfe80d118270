"""The headless CLI end to end: captions land in metadata, bad photos are named, nothing is damaged."""

import json
import os
import pty
import re
import shutil
import signal
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
    assert sorted(p.name for p in copies.iterdir()) == sorted(before)  # the PNG's caption is inside it too
    for photo in copies.glob("*.jpg"):
        assert exiftool(photo)["XMP-dc:Description"]
        assert image_data(photo) == image_data(pristine_samples / photo.name)
    assert exiftool(copies / "chelsea-small.png")["XMP-dc:Description"]


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
    assert exiftool(samples / "chelsea-small.png")["XMP-dc:Description"]
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
    for name, reason in [("truncated.jpg", "corrupt or truncated"), ("zero.jpg", "not a photo this app can open"),
                         ("notes.jpg", "not a photo this app can open"), ("bomb.jpg", "refused"), ("locked.jpg", "read-only")]:
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
    (["caption", "{samples}", "--beam", "0"], "argument --beam: must be from 1 to 10, not 0"),
    (["caption", "{samples}", "--beam", "-1"], "argument --beam: must be from 1 to 10, not -1"),
    (["caption", "{samples}", "--beam", "three"], "argument --beam: 'three' is not a whole number"),
    (["caption", "{samples}", "--max-length", "0"], "argument --max-length: must be from 1 to 100, not 0"),
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


def screen(raw: bytes) -> list[str]:
    """What a terminal shows after these bytes: a carriage return goes back to the line's start, ESC[K clears
    the rest of the line, later characters overwrite earlier ones."""
    lines = []
    for raw_line in raw.decode().replace("\r\n", "\n").split("\n"):
        line, col = [], 0
        for part in re.split(r"(\r|\x1b\[K)", raw_line):
            if part == "\r":
                col = 0
            elif part == "\x1b[K":
                del line[col:]
            else:
                for ch in part:
                    line[col:col + 1] = [ch]
                    col += 1
        lines.append("".join(line))
    return lines


def run_in_terminal(*args, index: Path) -> tuple[int, list[str]]:
    """The command with stdout and stderr on a pseudo-terminal, as in a terminal window; (status, screen)."""
    main, follower = pty.openpty()
    env = {**os.environ, "PHOTOCAPTION_INDEX": str(index), "COLUMNS": "200"}
    process = subprocess.Popen([sys.executable, "-m", "desktop_app", *map(str, args)], stdin=subprocess.DEVNULL,
                               stdout=follower, stderr=follower, cwd=ROOT, env=env)
    os.close(follower)
    raw = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal's far end closed: the command ended
            break
        if not chunk:
            break
        raw += chunk
    os.close(main)
    return process.wait(timeout=60), screen(raw)


def test_captions_are_on_a_terminal_screen_above_the_progress_bar(samples, tmp_path):
    """Issue 25 item 1: on a terminal `caption` (and `--dry-run`) showed only the bar. Each caption must stand on
    its own screen line, marked "needs review" where the model is unsure, with the bar drawn below them."""
    for extra in ([], ["--dry-run"]):
        jsonl = tmp_path / f"out{len(extra)}.jsonl"
        status, shown = run_in_terminal("caption", samples, "--jsonl", jsonl, *extra, index=tmp_path / "i.sqlite")
        assert status == 0, shown
        results = [json.loads(line) for line in jsonl.read_text().splitlines()]
        assert len(results) == 5
        for result in results:
            line = f"{result['path']}\t{result['caption']}" + ("\tneeds review" if result["needs_review"] else "")
            assert line in shown, (line, shown)
        bar = [number for number, line in enumerate(shown) if line.startswith("[#") and "5/5" in line]
        last_caption = max(number for number, line in enumerate(shown) if line.startswith(str(samples)))
        assert bar and bar[-1] > last_caption, shown
        unsure = sum(result["needs_review"] for result in results)
        assert f"needs review: {unsure} of the 5 captions (the model is not sure of them)" in shown or not unsure


def test_quiet_rerun_lists_no_skipped_photo_and_its_rate_counts_captioned_photos(samples, tmp_path):
    """Issue 25 item 2: -q printed one "skipped" line per photo and the rate counted skipped photos."""
    first = run_cli("caption", "-q", samples, index=tmp_path / "i.sqlite")
    assert first.returncode == 0 and first.stdout == ""
    again = run_cli("caption", "-q", samples, index=tmp_path / "i.sqlite")
    assert again.returncode == 0 and again.stdout == ""
    assert "skipped: " + str(samples) not in again.stderr
    assert "captioned 0, skipped 5, failed 0 of 5 photos in" in again.stderr and "photos/s" not in again.stderr
    assert again.stderr.count("why skipped: 5 already captioned by this model") == 1
    from desktop_app.cli import summary_line

    assert summary_line(2, 1000, 0, 1002, 4.0, False).endswith("(0.5 photos/s)")
    loud = run_cli("caption", samples, index=tmp_path / "i.sqlite")  # without -q each skipped photo is named
    assert f"skipped: {samples / 'coffee.jpg'}: already captioned by this model" in loud.stderr


def test_ctrl_c_while_starting_says_cancelled_without_a_traceback(samples, tmp_path):
    """Issue 25 item 3: Ctrl-C during start-up (imports, model loading) printed a KeyboardInterrupt traceback,
    or hung on an import lock. The signal is sent when -X importtime says these modules have loaded."""
    env = {**os.environ, "PHOTOCAPTION_INDEX": str(tmp_path / "i.sqlite")}
    for loaded in ("numpy", "onnxruntime", "desktop_app.captioning.pipeline"):
        process = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "desktop_app", "caption", samples,
                                    "--dry-run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=ROOT, env=env)
        seen = []
        for line in process.stderr:
            seen.append(line)
            if line.rsplit("|", 1)[-1].strip() == loaded:
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        err = "".join(seen) + err
        assert process.returncode == 130, (loaded, err[-2000:])
        assert "photocaption: cancelled" in err and "Traceback" not in err, (loaded, err[-2000:])
        assert out == ""


def test_show_refuses_files_that_are_not_readable_photos(tmp_path, capsys):
    """Issue 25 item 3: `show` on a 0-byte or non-image .jpg said "no caption" and exited 0."""
    from desktop_app import cli

    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("this is a text file")
    status = cli.main(["show", str(tmp_path / "zero.jpg"), str(tmp_path / "notes.jpg"),
                       "--index", str(tmp_path / "i.sqlite")])
    captured = capsys.readouterr()
    assert status == 1 and "no caption" not in captured.out
    assert f"{tmp_path / 'zero.jpg'}: cannot read it: the file is empty" in captured.err
    assert f"{tmp_path / 'notes.jpg'}: cannot read it: not an image" in captured.err


def test_show_says_needs_review_and_search_says_why_it_matched(samples, tmp_path):
    """Issue 25 item 4: "needs review" was only in --jsonl; search hits did not say which words matched where."""
    index = tmp_path / "i.sqlite"
    assert run_cli("caption", "-q", samples, "--jsonl", tmp_path / "o.jsonl", index=index).returncode == 0
    results = {Path(r["path"]).name: r for r in map(json.loads, (tmp_path / "o.jsonl").read_text().splitlines())}
    show = run_cli("show", *sorted(Path(r["path"]) for r in results.values()), index=index)
    assert show.returncode == 0
    blocks = {Path(block.split("\n", 1)[0]).name: block for block in re.split(r"\n(?=/)", show.stdout.strip())}
    assert sorted(blocks) == sorted(results)
    for name, r in results.items():  # the model's own mark, as --jsonl gave it (the README: all of the samples)
        said = re.search(r"\n  needs review: the model is not sure of it \(confidence (\d+)%\)", blocks[name])
        assert bool(said) == r["needs_review"], (name, blocks[name])
        assert not said or abs(int(said[1]) - 100 * r["confidence"]) <= 0.6  # --jsonl rounds it to 3 places
    # a keyword that is not a caption word: the hit must say its keyword matched, not its caption
    name, word = next(((name, k) for name, r in results.items() for k in r["keywords"] if " " not in k
                       and all(k not in o["caption"].lower() for o in results.values())), (None, None))
    assert word, "no sample has a keyword that is in no caption: pick another search for this check"
    found = run_cli("search", word, index=index)
    assert f"{samples / name}\t{results[name]['caption']}\tmatched: keyword '{word}'" in found.stdout.splitlines()
    caption_word = results[name]["caption"].split()[-1].strip(".").lower()
    hits = [json.loads(line) for line in run_cli("search", caption_word, word, "--json", index=index).stdout.splitlines()]
    assert str(samples / name) in [hit["path"] for hit in hits]
    for hit in hits:
        places = {m["typed"]: m["place"] for m in hit["matched"]}
        assert places[caption_word] == "caption" and places[word] == "keywords", hit
    # a broader word: the cat is found by "animal" and the hit says through which word
    broad = [json.loads(line) for line in run_cli("search", "animal", "--json", index=index).stdout.splitlines()]
    cat = next(hit for hit in broad if hit["path"] == str(samples / "chelsea.jpg"))
    assert {"typed": "animal", "word": "cat", "place": "caption", "narrower": True} in cat["matched"], cat


def test_quiet_says_nothing_of_a_photo_with_corrupt_exif(tmp_path):
    """Issue 25 item 3: Pillow's "UserWarning: Corrupt EXIF data" leaked through -q (the photo itself is fine)."""
    import io
    import struct

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "orange").save(buffer, "JPEG")
    data = buffer.getvalue()
    exif = b"Exif\x00\x00II*\x00" + struct.pack("<IH", 8, 5)  # five tags promised, none there
    (tmp_path / "odd.jpg").write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + data[2:])
    run = run_cli("caption", "-q", "--dry-run", tmp_path / "odd.jpg", index=tmp_path / "i.sqlite")
    assert run.returncode == 0 and run.stdout == ""
    assert "Warning" not in run.stderr and "captioned 1, skipped 0, failed 0 of 1 photos" in run.stderr


@pytest.mark.parametrize("flag, wanted", [("--high-contrast", True), ("--no-high-contrast", False), (None, None)])
def test_gui_takes_high_contrast_and_describe_only_with_its_window(monkeypatch, tmp_path, flag, wanted, capsys):
    """``photocaption gui --high-contrast`` asks the app for it; unset, the desktop decides (None). In the
    terminal describe has no colours to change: the flag without --window is a usage error."""
    import desktop_app.gui.app as app
    from desktop_app import cli

    asked = []
    monkeypatch.setattr(app, "run_app", lambda folder, model=None, high_contrast=None: asked.append(high_contrast) or 0)
    assert cli.main(["gui", str(tmp_path), *([flag] if flag else [])]) == 0
    assert asked == [wanted]
    if flag:
        photo = tmp_path / "a.jpg"
        Image.new("RGB", (32, 32)).save(photo)
        assert cli.main(["describe", flag, str(photo)]) == 2
        assert "--high-contrast is for --window" in capsys.readouterr().err
