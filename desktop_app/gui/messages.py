"""What the app says about a photo, in a person's words.

Messages from the other layers (the pipeline, the metadata writer) are written for the command line,
where each line names its photo. The app's Problems list names the photo at the start of each line,
so ``for_problems_list`` takes the photo's name and path out of the message, once, where the message
comes into the session, and says the few library words a person would not know plainly. No pattern
matching: plain string replacement, on words these layers are known to use.
"""

from __future__ import annotations

from pathlib import Path

# words of the command line or of a library -> what the app says instead
LIBRARY_WORDS = (
    ("; use overwrite to replace it", "; turn on 'Replace captions a person wrote' in Settings to replace it"),
    ("Pillow", "the image reader"),
    ("onnxruntime", "the model runtime"),
)
_NAME_CHARACTERS = "._-"  # with letters and digits: what may continue a file name ("a.jpg.xmp", "a.jpg-1")


def count_of(n: int, noun: str) -> str:
    """"1 photo", "2 photos": a status line says what happened in words a person would write."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def for_problems_list(message: str, photo: Path) -> str:
    """``message`` (about ``photo``) without the photo's path or name, in plain words:
    "locked.jpg: could not write (Permission denied)" -> "could not write (Permission denied)",
    "cannot read locked.jpg: permission denied" -> "cannot read the photo: permission denied"."""
    photo = Path(photo)
    for quoted in (f": '{photo}'", f': "{photo}"'):  # an OSError's ": '/path/to/photo'" adds nothing
        message = message.replace(quoted, "")
    message = message.replace(str(photo), "the photo")
    if message.startswith(f"{photo.name}: "):
        message = message[len(photo.name) + 2:]
    message = _name_to_the_photo(message, photo.name)
    for words, plain in LIBRARY_WORDS:
        message = message.replace(words, plain)
    return message


def _name_to_the_photo(message: str, name: str) -> str:
    """Each whole ``name`` in ``message`` becomes "the photo"; a longer name holding it ("a.jpg.xmp", a sidecar)
    stays as it is."""
    out, start = [], 0
    while (at := message.find(name, start)) >= 0:
        end = at + len(name)
        before, after = message[at - 1:at], message[end:end + 2]
        longer = (before.isalnum() or (before != "" and before in _NAME_CHARACTERS + "/\\")
                  or (after[:1].isalnum()) or (after[:1] in _NAME_CHARACTERS and after[1:2].isalnum()))
        out += [message[start:at], name if longer else "the photo"]
        start = end
    return "".join(out + [message[start:]])
