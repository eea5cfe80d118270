"""The open folder's state, apart from any widget: photos, drafts, writes, undo, problems, filters.

The window only shows this and calls it; tests drive it directly. Every change a
person or the model makes to a caption is kept in the library index as a draft
the moment it is made (one transaction per batch), so quitting, switching folder
or a crash loses nothing: reopening the folder brings the drafts back.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop_app.captioning.keywords import keywords_from_words
from desktop_app.captioning.pipeline import CAPTIONED, FAILED, SKIPPED
from desktop_app.gui.export import export_captions
from desktop_app.gui.messages import count_of, for_problems_list
from desktop_app.library.index import Details, Draft, Failure, LibraryIndex
from desktop_app.library.keep import WriteReport, machine_details
from desktop_app.library.undo import UndoReport, WriteJournal, clean_stale
from desktop_app.metadata.record import MACHINE, PERSON, CaptionRecord

# Filters of the grid ("show only ...").
ALL, UNCAPTIONED, UNSAVED, FAILED_FILTER, NEEDS_REVIEW = "all", "uncaptioned", "unsaved", "failed", "needs review"
FILTERS = (ALL, UNCAPTIONED, UNSAVED, FAILED_FILTER, NEEDS_REVIEW)
SORT_NAME, SORT_STATE = "name", "state"
UNDO_DEPTH = 10


@dataclass
class PhotoItem:
    path: Path
    caption: str = ""  # what the app shows (may be unsaved)
    source: str = ""  # MACHINE, PERSON, "other" (another tool) or "" (none)
    keywords: list[str] = field(default_factory=list)
    saved_caption: str = ""  # what the photo's metadata holds
    saved_keywords: list[str] = field(default_factory=list)
    saved_source: str = ""
    places: list[str] = field(default_factory=list)  # where the saved caption lives ("XMP", "sidecar x.xmp")
    alternatives: list[tuple[str, float]] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    attention: np.ndarray | None = None
    score: float | None = None
    confidence: float | None = None
    needs_review: bool = False
    model_id: str = ""
    details_text: str = ""  # the caption the model's words, attention and alternatives belong to
    keywords_edited: bool = False  # a person typed the keywords: caption edits no longer change them
    error: str = ""  # why it could not be captioned
    write_error: str = ""  # why its last write failed
    skipped: str = ""  # why the last run left it alone
    unreadable: bool = False  # not a photo the app can open

    @property
    def unsaved(self) -> bool:
        """A caption or keywords the photo does not hold yet (keywords typed for an uncaptioned photo count)."""
        return (bool(self.caption) and self.caption != self.saved_caption) or self.keywords != self.saved_keywords

    @property
    def failed(self) -> bool:
        return bool(self.error or self.write_error or self.unreadable)

    def badges(self) -> list[str]:
        """Its state in words, most important first (the grid draws these)."""
        out = []
        if self.unreadable:
            out.append("unreadable")
        elif self.error or self.write_error:
            out.append("failed")
        if self.unsaved:
            out.append("unsaved")
        elif self.saved_caption:
            out.append("captioned")
        if self.caption and self.needs_review:
            out.append("needs review")
        if self.caption:
            out.append({PERSON: "person", MACHINE: "machine"}.get(self.source, "other tool"))
        elif not self.unreadable:
            out.append("uncaptioned")
        return out

    def draft(self) -> Draft | None:
        return Draft(self.caption, self.source or PERSON, list(self.keywords), self.score, self.model_id) \
            if self.unsaved else None


@dataclass
class Problem:
    path: Path
    kind: str  # "failed", "skipped" or "warning"
    message: str  # in plain words
    earlier: bool = False  # a failure from before this run, still standing


def _empty(path: Path) -> bool:
    """A 0-byte file is no photo: known at once, not when its thumbnail first fails to load."""
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def follow_caption(keywords: list[str], old_caption: str, new_caption: str) -> list[str]:
    """Keywords after a caption edit: those taken from the old caption's words are replaced by the new one's;
    the rest (concepts seen in the photo, a person's own) stay."""
    old = set(keywords_from_words(_words(old_caption)))
    new = keywords_from_words(_words(new_caption))
    kept = [k for k in keywords if k not in old]
    return new + [k for k in kept if k not in new]


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'-]+", text.lower())


class Session(QObject):
    """Photos of the open folder and everything done to them."""

    changed = Signal(list)  # paths whose state changed
    reset = Signal()  # a new folder (or none)
    problems_changed = Signal()
    undo_changed = Signal()

    def __init__(self, index: LibraryIndex, undo_folder: Path, parent: QObject | None = None):
        super().__init__(parent)
        self.index = index
        self.undo_folder = Path(undo_folder)
        clean_stale(self.undo_folder)
        self.folder: Path | None = None
        self.items: list[PhotoItem] = []
        self._by_path: dict[Path, PhotoItem] = {}
        self.problems: list[Problem] = []
        self.run_label = ""
        self.run_skipped = 0  # photos this run left alone before the model saw them (see to_caption)
        self.undo_stack: list[WriteJournal] = []
        self.restored_drafts = 0
        self._asked: dict[Path, str] = {}  # photos sent to the model -> their caption when the run was asked for

    # ---- folder ------------------------------------------------------------------------------
    def open(self, folder: Path, paths: list[Path]) -> None:
        """Show these photos; drafts and model details kept from earlier sessions come back at once."""
        self.folder = Path(folder).resolve()
        self.items = [PhotoItem(Path(p).resolve(), unreadable=_empty(Path(p))) for p in paths]
        self._by_path = {item.path: item for item in self.items}
        self.problems, self.run_label, self._asked = [], "", {}
        for path, d in self.index.details_under(self.folder).items():
            item = self._by_path.get(path)
            if item is not None:
                self._attach(item, d)
        for path, failure in self.index.failures_under(self.folder).items():  # as failed as when last tried
            item = self._by_path.get(path)
            if item is not None:
                item.error, item.write_error = failure.error, failure.write_error
        self._drafted: set[Path] = set()
        for path, draft in self.index.drafts_under(self.folder).items():
            item = self._by_path.get(path)
            if item is None:
                continue
            item.caption, item.source, item.keywords = draft.caption, draft.source, list(draft.keywords)
            item.score, item.model_id = draft.score, draft.model_id or item.model_id
            self._match_details(item)
            self._drafted.add(path)
        self.restored_drafts = len(self._drafted)
        self.problems_changed.emit()
        self.reset.emit()

    def item(self, path: Path) -> PhotoItem | None:
        return self._by_path.get(Path(path))

    def apply_saved(self, captions: dict[Path, tuple[str, str, list[str]]]) -> None:
        """What the photos' metadata holds (from the folder scan)."""
        stale: dict[Path, Draft | None] = {}
        for item in self.items:
            caption, source, keywords = captions.get(item.path, ("", "", []))
            self._set_saved(item, caption, source, keywords)
            if item.path in self._drafted and not item.unsaved:
                stale[item.path] = None  # the draft was written (by us before a crash, or by another tool)
            if not item.caption and caption:
                item.caption, item.source, item.keywords = caption, item.saved_source, list(keywords)
                self._match_details(item)
        if stale:
            self.index.save_drafts(stale)
        self.changed.emit([i.path for i in self.items])

    def _set_saved(self, item: PhotoItem, caption: str, source: str, keywords: list[str], places=None) -> None:
        item.saved_caption, item.saved_keywords = caption, list(keywords)
        item.saved_source = source if source in (MACHINE, PERSON, "") else "other"
        if places is not None:
            item.places = list(places)

    def _attach(self, item: PhotoItem, d: Details) -> None:
        item.alternatives, item.words, item.attention = list(d.alternatives), list(d.words), d.attention
        item.confidence, item.needs_review, item.model_id = d.confidence, d.needs_review, d.model_id
        item.details_text = d.text

    @staticmethod
    def _match_details(item: PhotoItem) -> None:
        """Attention belongs to the words the model wrote: keep it only while the caption is those words."""
        if item.caption != item.details_text:
            item.words, item.attention = [], None
            item.needs_review = item.needs_review and item.source == MACHINE

    # ---- captioning results --------------------------------------------------------------------
    def start_run(self, label: str) -> None:
        """A new run (captioning, writing): the Problems list now shows this run's."""
        self.problems, self.run_label, self.run_skipped = [], f"{label}, {time.strftime('%H:%M')}", 0
        self.problems_changed.emit()

    def to_caption(self, paths: list[Path], recaption: bool, model_id: str, protect_person: bool = True) -> list[Path]:
        """The photos of a run to send to the model. An unsaved caption counts here as a saved one counts for the
        pipeline: without recaption (Caption All) a person's unsaved caption, and this model's own, are left alone
        and named as skips (``run_skipped``), so a run never replaces a draft unasked and a stopped run goes on
        where it stopped."""
        out = []
        for path in paths:
            item = self.item(Path(path))
            reason = ""
            if item is not None and not recaption and item.unsaved and item.caption:
                if item.source == PERSON and protect_person:
                    reason = "has an unsaved caption a person wrote (kept as a draft)"
                elif item.source == MACHINE and item.model_id == model_id:
                    reason = "already captioned by this model (not yet written)"
            if reason:  # named in Problems only: nothing is wrong with the photo, so its info line shows no warning
                self.problems.append(Problem(item.path, "skipped", reason))
                self.run_skipped += 1
            else:
                out.append(Path(path))
                if item is not None:
                    self._asked[item.path] = item.caption
        if self.run_skipped:
            self.problems_changed.emit()
        return out

    def apply_outcomes(self, outcomes: list, model_id: str = "") -> dict[str, int]:
        """A bundle of finished photos from the captioning worker: [(PhotoOutcome, WriteReport | None)]."""
        drafts: dict[Path, Draft | None] = {}
        details: dict[Path, Details] = {}
        counts = {"captioned": 0, "skipped": 0, "failed": 0, "written": 0, "not written": 0}
        changed = []
        for outcome, report in outcomes:
            item = self.item(Path(outcome.path).resolve())
            if item is None:
                continue
            changed.append(item.path)
            if outcome.status == CAPTIONED:
                r = outcome.result
                if self.typed_since_asked(item):  # a person's typing wins: the model's caption becomes an alternative
                    item.alternatives = [(r.text, r.score)] + [a for a in r.alternatives if a[0] != r.text]
                    item.words, item.attention, item.needs_review = [], None, False
                else:
                    item.caption, item.source, item.keywords = r.text, MACHINE, list(r.keywords)
                    item.keywords_edited, item.score = False, r.score
                    item.words, item.attention, item.alternatives = list(r.words), r.attention, list(r.alternatives)
                    item.needs_review = bool(getattr(r, "needs_review", False))
                item.error, item.skipped = "", ""
                item.confidence = getattr(r, "confidence", None)
                item.model_id, item.details_text = model_id or item.model_id, r.text
                details[item.path] = machine_details(r, item.model_id)
                counts["captioned"] += 1
                if report is not None:
                    counts["written" if self._apply_report(item, report) == "written" else "not written"] += 1
                drafts[item.path] = item.draft()
            elif outcome.status == SKIPPED:
                item.skipped = for_problems_list(outcome.message, item.path)
                counts["skipped"] += 1
                self._problem(item, "skipped", item.skipped)
            elif outcome.status == FAILED:
                item.error = for_problems_list(outcome.message, item.path)
                counts["failed"] += 1
                self._problem(item, "failed", item.error)
        if details:
            self.index.save_details(details)
        if drafts:
            self.index.save_drafts(drafts)
        self._keep_failures(changed)
        self.changed.emit(changed)
        return counts

    def typed_since_asked(self, item: PhotoItem) -> bool:
        """A person wrote this photo's caption after the run that is captioning it was asked for."""
        return item.source == PERSON and item.unsaved and item.caption != self._asked.get(item.path, item.caption)

    # ---- a person's edits ------------------------------------------------------------------------
    def edit_caption(self, item: PhotoItem, text: str) -> None:
        text = text.strip()
        if text == item.caption:
            return
        rows = [n for n, (alternative, _) in enumerate(item.alternatives) if alternative == text]
        if rows or (text and text == item.details_text):  # back to the model's own words (Ctrl+Z in the editor
            # undid the edit; its top caption need not be among its alternatives): its caption again, not a person's
            self._model_words(item, text, item.alternatives[rows[0]][1] if rows else item.score)
            return
        if not item.keywords_edited:
            item.keywords = follow_caption(item.keywords, item.caption, text)
        item.caption, item.source = text, PERSON
        item.words, item.attention, item.needs_review = [], None, False
        self._keep(item)

    def edit_keywords(self, item: PhotoItem, keywords: list[str]) -> None:
        keywords = list(dict.fromkeys(k.strip() for k in keywords if k.strip()))
        if keywords == item.keywords:
            return
        item.keywords, item.keywords_edited = keywords, True
        if not item.caption and item.saved_caption:
            item.caption = item.saved_caption
        self._keep(item)

    def choose_alternative(self, item: PhotoItem, row: int) -> None:
        """The model's own words, chosen by a person: still a machine caption, with that alternative's score."""
        self._model_words(item, *item.alternatives[row])

    def _model_words(self, item: PhotoItem, text: str, score: float | None) -> None:
        if not item.keywords_edited:
            item.keywords = follow_caption(item.keywords, item.caption, text)
        item.caption, item.source, item.score = text, MACHINE, score
        details = self.index.details_of(item.path) if text == item.details_text else None
        if details is not None:  # back to the model's own top caption: its words and attention come back
            item.words, item.attention, item.needs_review = list(details.words), details.attention, details.needs_review
        self._match_details(item)
        self._keep(item)

    def mark_reviewed(self, items: list[PhotoItem]) -> int:
        """A person has checked these machine captions: they need review no more, here and in the index
        (so `photocaption show` and the next session agree). Returns how many changed."""
        marked = [i for i in items if i.caption and i.needs_review]
        details = {}
        for item in marked:
            item.needs_review = False
            saved = self.index.details_of(item.path)
            if saved is not None and saved.text == item.caption:
                details[item.path] = replace(saved, needs_review=False)
        if details:
            self.index.save_details(details)
        if marked:
            self.changed.emit([i.path for i in marked])
        return len(marked)

    def revert(self, item: PhotoItem) -> None:
        """Back to what the photo holds: the draft is dropped."""
        item.caption, item.keywords, item.source = item.saved_caption, list(item.saved_keywords), item.saved_source
        item.keywords_edited = False
        self._keep(item)

    def discard_all(self) -> int:
        """Drop every unsaved caption and edit of this folder (a person chose to)."""
        unsaved = [i for i in self.items if i.unsaved]
        for item in unsaved:
            item.caption, item.keywords, item.source = item.saved_caption, list(item.saved_keywords), item.saved_source
            item.words, item.attention = [], None
        self.index.save_drafts({i.path: None for i in unsaved})
        self.changed.emit([i.path for i in unsaved])
        return len(unsaved)

    def _keep(self, item: PhotoItem) -> None:
        self.index.save_drafts({item.path: item.draft()})
        self.changed.emit([item.path])

    # ---- writing -----------------------------------------------------------------------------
    def write_jobs(self, items: list[PhotoItem], model_id: str) -> list[tuple[Path, CaptionRecord]]:
        """What to write: every unsaved caption (a keyword-only edit too) as the record its source calls for."""
        jobs = []
        for item in items:
            if not item.unsaved:
                continue
            if not item.caption:  # keywords alone: the writer writes a caption with them
                self._problem(item, "skipped", "not written: add a caption first (its keywords are kept as a draft)")
                continue
            source = item.source if item.source in (MACHINE, PERSON) else PERSON
            machine = source == MACHINE  # an unsure machine caption says so beside the alt text (issue 29)
            jobs.append((item.path, CaptionRecord(item.caption, source, item.model_id or model_id,
                                                  list(item.keywords), item.score if machine else None,
                                                  needs_review=machine and item.needs_review,
                                                  confidence=item.confidence if machine else None)))
        return jobs

    def apply_writes(self, reports: list[WriteReport]) -> dict[str, int]:
        counts = {"written": 0, "skipped": 0, "failed": 0}
        changed, drafts = [], {}
        for report in reports:
            item = self.item(Path(report.path).resolve())
            if item is None:
                continue
            counts[self._apply_report(item, report)] += 1
            drafts[item.path] = item.draft()
            changed.append(item.path)
        if drafts:
            self.index.save_drafts(drafts)
        self._keep_failures(changed)
        self.changed.emit(changed)
        return counts

    def _keep_failures(self, paths: list[Path]) -> None:
        """Why these photos failed (or that they do not now), kept in the index for the next session."""
        if paths:
            self.index.save_failures({p: Failure(self._by_path[p].error, self._by_path[p].write_error) for p in paths})

    def _apply_report(self, item: PhotoItem, report: WriteReport) -> str:
        """Take in one write's outcome; returns "written", "skipped" or "failed"."""
        if report.places:
            item.write_error = ""
            saved = report.saved
            if saved is not None:
                self._set_saved(item, saved.text, PERSON if saved.written_by_person else saved.source,
                                saved.keywords, saved.places or report.places)
                kept = [k for k in saved.keywords if k not in item.keywords]
                if kept:  # the writer adds keywords and never removes one already in the photo
                    self._problem(item, "warning", f"kept keywords already in the photo: {', '.join(kept)}")
                if saved.text == item.caption:
                    item.keywords = list(saved.keywords)  # show what the photo holds now
            else:
                self._set_saved(item, item.caption, item.source, item.keywords, report.places)
            for warning in report.warnings:
                self._problem(item, "warning", for_problems_list(warning, item.path))
            return "written"
        if report.skipped:
            item.skipped = for_problems_list(report.skipped, item.path)
            self._problem(item, "skipped", f"not written: {item.skipped}")
            return "skipped"
        item.write_error = for_problems_list(report.error or "not written", item.path)
        self._problem(item, "failed", f"not written: {item.write_error}")
        return "failed"

    def _problem(self, item: PhotoItem, kind: str, message: str) -> None:
        self.problems.append(Problem(item.path, kind, message))
        self.problems_changed.emit()

    def shown_problems(self) -> list[Problem]:
        """This run's problems, and every photo that is failed now though this run did not say so (an earlier
        run's failure, a file found unreadable): the Problems list never says "no problems" beside "1 failed"."""
        named = {p.path for p in self.problems if p.kind == "failed"}
        earlier = [Problem(i.path, "failed", i.write_error or i.error or "cannot be opened as a photo", earlier=True)
                   for i in self.items if i.failed and i.path not in named]
        return self.problems + earlier

    def clear_problems(self) -> None:
        self.problems = []
        self.problems_changed.emit()

    # ---- undo --------------------------------------------------------------------------------
    def new_journal(self, label: str) -> WriteJournal:
        return WriteJournal(label, self.undo_folder)

    def push_undo(self, journal: WriteJournal) -> None:
        if not len(journal):
            journal.discard()
            return
        self.undo_stack.append(journal)
        while len(self.undo_stack) > UNDO_DEPTH:
            self.undo_stack.pop(0).discard()
        self.undo_changed.emit()

    def undo_label(self) -> str:
        return self.undo_stack[-1].label if self.undo_stack else ""

    def pop_undo(self) -> WriteJournal | None:
        journal = self.undo_stack.pop() if self.undo_stack else None
        self.undo_changed.emit()
        return journal

    def apply_undo(self, report: UndoReport, saved: dict[Path, CaptionRecord | None]) -> None:
        """After an undo: the photos hold their old captions again; what was written becomes a draft again."""
        changed, drafts = [], {}
        for path in report.restored:
            item = self.item(Path(path).resolve())
            if item is None:
                continue
            record = saved.get(path)
            if record is None:
                self._set_saved(item, "", "", [], [])
            else:
                self._set_saved(item, record.text, PERSON if record.written_by_person else record.source,
                                record.keywords, record.places)
            drafts[item.path] = item.draft()
            changed.append(item.path)
        for path, why in report.refused:
            item = self.item(Path(path).resolve())
            if item is not None:
                self._problem(item, "failed", f"not undone: {for_problems_list(why, item.path)}")
        self.index.save_drafts(drafts)
        self.changed.emit(changed)

    def discard_undo(self) -> None:
        for journal in self.undo_stack:
            journal.discard()
        self.undo_stack = []

    # ---- export ------------------------------------------------------------------------------
    def export(self, path: Path, kind: str) -> int:
        """Every caption shown (saved or not) to CSV or JSON, all or nothing (``export.export_captions``)."""
        return export_captions(self.items, path, kind)

    # ---- counts, filters, search -------------------------------------------------------------
    @staticmethod
    def state_of(item: PhotoItem) -> str:
        """The one state a photo is counted in, most urgent first: failed, unsaved, uncaptioned or captioned."""
        if item.failed:
            return "failed"
        if item.unsaved:
            return "unsaved"
        return "captioned" if item.saved_caption else "uncaptioned"

    def counts(self) -> dict[str, int]:
        """Photos per state (failed + unsaved + uncaptioned + captioned = photos), and needs review, person,
        machine and unreadable, which overlap those."""
        c = {"photos": len(self.items), "captioned": 0, "unsaved": 0, "uncaptioned": 0, "failed": 0,
             "needs review": 0, "person": 0, "machine": 0, "unreadable": 0}
        for item in self.items:
            c[self.state_of(item)] += 1
            c["unreadable"] += item.unreadable
            c["needs review"] += bool(item.caption and item.needs_review)
            c["person"] += bool(item.caption) and item.source == PERSON
            c["machine"] += bool(item.caption) and item.source == MACHINE
        return c

    def counts_text(self) -> str:
        """The counts in words for the status bar ("" with no photos)."""
        c = self.counts()
        if not c["photos"]:
            return ""
        states = ", ".join(f"{c[k]} {k}" for k in ("captioned", "unsaved", "uncaptioned", "failed") if c[k])
        review = f" · {c['needs review']} needs review" if c["needs review"] else ""
        return f"{count_of(c['photos'], 'photo')}: {states}{review}"

    def unsaved_items(self) -> list[PhotoItem]:
        return [i for i in self.items if i.unsaved]

    @staticmethod
    def shown_by(item: PhotoItem, kind: str) -> bool:
        """Whether the grid's "show only" filter shows it: the uncaptioned and unsaved filters show what
        their counts count."""
        if kind in (UNCAPTIONED, UNSAVED):
            return Session.state_of(item) == kind
        if kind == FAILED_FILTER:
            return item.failed
        if kind == NEEDS_REVIEW:
            return bool(item.caption and item.needs_review)
        return True

    def matching(self, text: str) -> set[Path] | None:
        """Photos of this folder whose caption or keywords hold every word (None: no search).

        The index answers for what the photos hold; a photo with a draft is matched on the draft,
        which is what the grid shows."""
        words = _words(text)
        if not words:
            return None
        hits = {h.path for h in self.index.search(text, limit=1_000_000)}
        out = set()
        for item in self.items:
            if item.unsaved:
                haystack = (item.caption + " " + " ".join(item.keywords)).lower()
                if all(w in haystack for w in words):
                    out.add(item.path)
            elif item.path in hits:
                out.add(item.path)
        return out

    def library_hits(self, text: str) -> list:
        """Photos of every indexed folder matching ``text``, those with a draft found by their draft."""
        hits = {h.path: h for h in self.index.search(text, limit=500)}
        hits.update({h.path: h for h in self.index.search_drafts(text)})
        return list(hits.values())

    def state_key(self, item: PhotoItem) -> tuple:
        """The needs-attention order: by state, captions needing review least confident first, then by name."""
        rank = self.state_rank(item)
        confidence = item.confidence if rank == 1 and item.confidence is not None else 0.0
        return rank, confidence, item.path.name.lower(), str(item.path)

    def state_rank(self, item: PhotoItem) -> int:
        """Sort by state: what needs a person first."""
        if item.failed:
            return 0
        if item.caption and item.needs_review:
            return 1
        if item.unsaved:
            return 2
        if not item.caption:
            return 3
        return 4
