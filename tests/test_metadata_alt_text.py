"""Alt text a reader can weigh (issue 29): a machine caption that needs review says so beside the alt text
(Iptc4xmpCore:ExtDescrAccessibility), read back with exiftool; a person's alt text is never changed."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import exiftool
from desktop_app.cli import main
from desktop_app.metadata.record import MACHINE, PERSON, CaptionRecord
from desktop_app.metadata.store import SIDECAR, WriteOptions, sidecar_path, write_caption
from desktop_app.metadata.xmp import UNSURE

ALT, EXT = "XMP-iptcCore:AltTextAccessibility", "XMP-iptcCore:ExtDescrAccessibility"
UNSURE_CAPTION = CaptionRecord("A small brown and white cat is playing with a toy.", MACHINE, "alt-test@1",
                               ["cat", "tabby", "toy"], -0.98, needs_review=True, confidence=0.32)
SURE_CAPTION = CaptionRecord("A cat looking at the camera.", MACHINE, "alt-test@2", ["cat"], -0.3, confidence=0.9)


def alt_fields(photo) -> dict:
    return exiftool(f"-{ALT}", f"-{EXT}", str(photo))


@pytest.mark.parametrize("name, mode", [("chelsea.jpg", "embed"), ("chelsea-small.png", "embed"),
                                        ("coffee.jpg", "sidecar")])
def test_an_unsure_machine_caption_says_so_where_alt_text_is_read(samples, name, mode):
    photo = samples / name
    options = WriteOptions(mode=SIDECAR) if mode == "sidecar" else WriteOptions()
    read = sidecar_path(photo) if mode == "sidecar" else photo
    write_caption(photo, UNSURE_CAPTION, options)
    fields = alt_fields(read)
    assert fields[ALT] == UNSURE_CAPTION.text
    assert fields[EXT] == (f"{UNSURE}: the model that wrote it is not sure of it (confidence 32%). What the models "
                           "saw: cat, tabby, toy. Written by photocaption, model alt-test@1.")
    write_caption(photo, SURE_CAPTION, options)  # a sure caption: our note goes, it would now be wrong
    assert alt_fields(read).get(EXT) is None and alt_fields(read)[ALT] == SURE_CAPTION.text
    write_caption(photo, UNSURE_CAPTION, options)
    write_caption(photo, CaptionRecord("Chelsea, my cat.", PERSON), options)  # a person's caption is sure
    assert alt_fields(read) == {"SourceFile": str(read), ALT: "Chelsea, my cat."}


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_persons_alt_text_and_long_description_are_never_changed(samples, overwrite):
    photo = samples / "chelsea.jpg"
    write_caption(photo, SURE_CAPTION)
    subprocess.run(["exiftool", "-q", "-overwrite_original", f"-{ALT}=Chelsea, our cat, on the sofa.",
                    f"-{EXT}=Chelsea is a grey tabby; she looks straight at the camera.", str(photo)], check=True)
    write_caption(photo, UNSURE_CAPTION, WriteOptions(overwrite=overwrite))
    fields = exiftool(f"-{ALT}", f"-{EXT}", "-XMP-dc:Description", str(photo))
    assert fields["XMP-dc:Description"] == UNSURE_CAPTION.text  # the caption itself was ours to replace
    assert fields[ALT] == "Chelsea, our cat, on the sofa."
    assert fields[EXT] == "Chelsea is a grey tabby; she looks straight at the camera."


def test_photocaption_caption_marks_exactly_the_captions_that_need_review(samples, tmp_path):
    jsonl = tmp_path / "run.jsonl"
    assert main(["caption", str(samples), "--jsonl", str(jsonl), "--no-index", "-q"]) == 0
    for row in map(json.loads, jsonl.read_text().splitlines()):
        fields = alt_fields(row["path"])
        assert fields[ALT] == row["caption"]
        assert (EXT in fields) == row["needs_review"], row
        if row["needs_review"]:
            assert f"What the models saw: {', '.join(row['keywords'])}." in fields[EXT]
