"""Issue 27: the app's decode defaults and limits are defined once (``captioning/options.py``). Each front end is
read through its own parser, schema or widgets, so a copy that drifts in any of them fails here."""

from pathlib import Path

import pytest

from desktop_app.captioning.options import LIMITS, DecodeOptions

APP = DecodeOptions()
FLAGS = {"beam_size": "--beam", "max_length": "--max-length", "no_repeat_ngram": "--no-repeat-ngram"}
SERVE_NAMES = {"beam_size": "beam", "max_length": "max_length", "no_repeat_ngram": "no_repeat_ngram"}


def test_the_app_decodes_with_beam_3_twenty_words_and_no_repeated_3_grams():
    assert (APP.beam_size, APP.max_length, APP.no_repeat_ngram) == (3, 20, 3)
    assert set(LIMITS) == set(FLAGS)
    assert all(limit.low <= getattr(APP, name) <= limit.high for name, limit in LIMITS.items())


@pytest.mark.parametrize("command", [["caption", "photo.jpg"], ["cluster", "caption", "photo.jpg", "--out", "out"]],
                         ids=["caption", "cluster"])
def test_command_line_defaults_and_limits_are_the_apps(command, capsys):
    from desktop_app.cli import build_parser

    def parse(*extra: str):
        return build_parser().parse_args([*command, *extra])

    args = parse()
    assert {name: getattr(args, flag[2:].replace("-", "_")) for name, flag in FLAGS.items()} == \
        {name: getattr(APP, name) for name in FLAGS}
    for name, flag in FLAGS.items():
        low, high = LIMITS[name]
        for edge in (low, high):
            assert getattr(parse(flag, str(edge)), flag[2:].replace("-", "_")) == edge
        for outside in (low - 1, high + 1):
            with pytest.raises(SystemExit):
                parse(flag, str(outside))
            assert f"must be from {low} to {high}" in capsys.readouterr().err


def test_serve_defaults_and_limits_are_the_apps():
    from desktop_app.serve.openapi import document
    from desktop_app.serve.payload import BadRequest, parse_options

    assert parse_options({}).decode == APP
    parameters = {p["name"]: p["schema"] for p in document(2**20)["paths"]["/v1/caption"]["post"]["parameters"]}
    for name, option in SERVE_NAMES.items():
        low, high = LIMITS[name]
        schema = parameters[option]
        assert (schema["default"], schema["minimum"], schema["maximum"]) == (getattr(APP, name), low, high)
        for edge in (low, high):
            assert getattr(parse_options({option: edge, "n_best": 1}).decode, name) == edge
        for outside in (low - 1, high + 1):
            with pytest.raises(BadRequest, match=f"{option} must be from {low} to {high}"):
                parse_options({option: outside})


def test_desktop_app_defaults_and_limits_are_the_apps(qtbot, tmp_path, pristine_samples, monkeypatch):
    """The settings dialog's boxes bound what a person may choose, and a run decodes with what the settings say
    (the worker is stopped as it is made: only the options it was given are read)."""
    from PySide6.QtCore import QSettings

    from desktop_app.gui import main_window, runs
    from desktop_app.gui.settings import AppSettings, SettingsDialog

    dialog = SettingsDialog(AppSettings())
    qtbot.addWidget(dialog)
    for name, box in (("beam_size", dialog.beam), ("max_length", dialog.max_length)):
        assert (box.value(), box.minimum(), box.maximum()) == (getattr(APP, name), *LIMITS[name])

    given: list = []

    class Stop(Exception):
        pass

    def worker(captioner, paths, options, *rest):
        given.append(options.decode)
        raise Stop

    monkeypatch.setattr(runs, "CaptionWorker", worker)
    window = main_window.MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                                    tmp_path / "library.sqlite")
    qtbot.addWidget(window)
    window.ask_about_unsaved = lambda doing: "keep"
    window.runs.load_model(window.settings)  # opened off the UI thread; with it open, a run starts at once
    qtbot.waitUntil(lambda: window.runs.captioner is not None, timeout=30_000)
    with pytest.raises(Stop):
        window.caption([Path(pristine_samples) / "chelsea.jpg"], recaption=True)
    assert given == [APP]
