"""What a caption in metadata is: its text, who wrote it, which model, and every place it was found."""

from __future__ import annotations

from dataclasses import dataclass, field

from desktop_app.metadata.policy import MACHINE, PERSON, is_placeholder, meaningful, our_texts, persons_places

__all__ = ["MACHINE", "PERSON", "CaptionRecord", "meaningful", "is_placeholder"]


@dataclass
class CaptionRecord:
    """A caption to write, or one found in a photo's metadata."""

    text: str
    source: str = MACHINE  # MACHINE (a model wrote it) or PERSON; "" when there is no mark of ours
    model_id: str = ""
    keywords: list[str] = field(default_factory=list)
    score: float | None = None
    needs_review: bool = False  # the model is unsure: alt text readers are told so (xmp's ExtDescrAccessibility)
    confidence: float | None = None  # 0..1, the model's calibrated confidence, said with the doubt
    machine_text: str = ""  # the text the model wrote, as recorded in our XMP namespace
    places: list[str] = field(default_factory=list)  # where it was found: "XMP", "EXIF", "IPTC", "sidecar x.xmp"
    # Every caption place read, with its text (placeholders included), e.g. {"EXIF": "...", "IPTC": "..."}.
    found: dict[str, str] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)  # places present but not readable, with the reason
    ours: list[str] = field(default_factory=list)  # every text our marks say a model wrote (sidecar and embedded)

    @property
    def written_by_person(self) -> bool:
        """True when any caption place holds meaningful text our own mark does not account for.

        A description without our mark came from a person or another tool; one
        whose text differs from the machine text we recorded was edited since,
        in whichever place (an EXIF-only edit counts too).
        """
        return bool(self.person_places)

    @property
    def person_places(self) -> list[str]:
        """The places holding text a person wrote."""
        found = self.found or {self.places[0] if self.places else "XMP": self.text}
        return persons_places(found, self.ours or our_texts([(self.source, self.machine_text)]))
