"""What a caption in metadata is: its text, who wrote it, and which model."""

from __future__ import annotations

from dataclasses import dataclass, field

MACHINE, PERSON = "machine", "person"

# Cameras fill EXIF ImageDescription with their own name; that is no one's caption.
CAMERA_PLACEHOLDERS = frozenset({"olympus digital camera", "sony dsc", "digital camera", "dcim", "default",
                                 "samsung", "image", "picasa", "exif_jpeg_picture"})


@dataclass
class CaptionRecord:
    """A caption to write, or one found in a photo's metadata."""

    text: str
    source: str = MACHINE  # MACHINE (a model wrote it) or PERSON
    model_id: str = ""
    keywords: list[str] = field(default_factory=list)
    score: float | None = None
    machine_text: str = ""  # the text the model wrote, as recorded in our XMP namespace
    places: list[str] = field(default_factory=list)  # where it was found: "XMP", "EXIF", "sidecar"

    @property
    def written_by_person(self) -> bool:
        """True unless our own mark says a model wrote exactly this text.

        A description without our mark came from a person or another tool; one
        whose text differs from the machine text we recorded was edited since.
        """
        if not meaningful(self.text):
            return False
        return self.source != MACHINE or (bool(self.machine_text) and self.text.strip() != self.machine_text.strip())


def meaningful(text: str | None) -> bool:
    return bool(text and text.strip() and text.strip().lower() not in CAMERA_PLACEHOLDERS)
