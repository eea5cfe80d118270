"""photocaption cluster caption and cluster write (issue 31): tiny local Ray jobs on copies of the sample photos.

The same photos give the same results as ``photocaption caption`` (the CLI's --jsonl fields), a rerun
with the same results folder captions only what is not done yet: no photo twice, none lost; and the results
written back give the photos those captions, by the CLI's safety rules.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray.data", reason='the cluster extra is not installed (pip install -e ".[cluster]")')

from desktop_app.bundle.format import load_bundle  # noqa: E402
from conftest import exiftool  # noqa: E402
from desktop_app.cluster import results  # noqa: E402
from desktop_app.cluster import local  # noqa: E402
from desktop_app.cluster.job import JobOptions, PoolError, caption_on_ray, plan_pool  # noqa: E402
from desktop_app.cluster.storage import Place, keys_of  # noqa: E402
from desktop_app.cluster.write import ALREADY, CHANGED, NOT_CAPTIONED  # noqa: E402
from desktop_app.library.index import LibraryIndex  # noqa: E402
from desktop_app.metadata.record import MACHINE, PERSON, CaptionRecord  # noqa: E402
from desktop_app.metadata.store import read_caption, write_caption  # noqa: E402
from desktop_app.photos.discover import find_photos  # noqa: E402
from desktop_app.resources import DEFAULT_BUNDLE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("caption", "keywords", "confidence", "score", "alternatives", "needs_review")


@pytest.fixture
def photos(samples) -> Path:
    """The samples twice over (two folders of copies) and a file that is no photo."""
    shutil.copytree(samples, samples.parent / "copies")
    (samples / "broken.jpg").write_bytes(b"not a photo at all")
    return samples.parent


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


def run(*args: object, index: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PHOTOCAPTION_INDEX": str(index)}
    return subprocess.run([sys.executable, "-m", "desktop_app", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env)


def rows_by_path(out: Path) -> dict[str, dict]:
    rows = results.read_results(out).to_pylist()
    assert len({r["path"] for r in rows}) == len(rows), "a photo has more than one row"
    for r in rows:
        r["alternatives"] = [[a["caption"], a["score"]] for a in r["alternatives"]]
    return {r["path"]: r for r in rows}


def test_the_cluster_command_gives_the_clis_results(photos, tmp_path):
    """The command with no --address starts a local Ray; each photo's fields equal the CLI's --jsonl line,
    and the photo that cannot be read fails with the CLI's words."""
    sources = [photos / "samples", photos / "copies"]
    cli = run("caption", "--dry-run", "-q", "--jsonl", tmp_path / "cli.jsonl", *sources, index=tmp_path / "i.sqlite")
    assert cli.returncode == 1, cli.stderr  # the broken photo failed
    lines = map(json.loads, (tmp_path / "cli.jsonl").read_text().splitlines())
    expected = {str(Path(r["path"]).resolve()): r for r in lines}

    ray_run = run("cluster", "caption", "--out", tmp_path / "out", "--batch-size", "4", *sources,
                  index=tmp_path / "i.sqlite")
    assert ray_run.returncode == 1, ray_run.stderr
    assert "captioned 10, failed 1, already done 0 of 11 photos" in ray_run.stderr
    got = rows_by_path(tmp_path / "out")
    assert set(got) == set(expected)
    for path, line in expected.items():
        assert {f: got[path][f] for f in FIELDS} == {f: line[f] for f in FIELDS}, path
        assert (got[path]["status"], got[path]["message"]) == (line["status"], line["message"]), path
    assert {r["model_id"] for r in got.values()} == {load_bundle(DEFAULT_BUNDLE).model_id}
    broken = got[str((photos / "samples" / "broken.jpg").resolve())]
    assert broken["status"] == "failed" and broken["message"] and broken["caption"] is None


def test_a_rerun_skips_done_photos_and_retries_failed_ones_only_when_asked(photos, tmp_path, local_ray):
    paths = list(find_photos([photos / "samples", photos / "copies"]))
    out = tmp_path / "out"
    first = caption_on_ray(paths, out, JobOptions(batch_size=4))
    assert (first.captioned, first.failed, first.already_done) == (10, 1, 0)
    before = rows_by_path(out)

    again = caption_on_ray(paths, out, JobOptions(batch_size=4))
    assert (again.captioned, again.failed, again.already_done) == (0, 0, 11)
    assert rows_by_path(out) == before

    changed = photos / "copies" / "rocket.jpg"
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    retried = caption_on_ray(paths, out, JobOptions(batch_size=4, retry_failed=True))
    assert (retried.captioned, retried.failed, retried.already_done) == (1, 1, 9)
    after = rows_by_path(out)  # one row per photo: the retried and the changed photo's old rows are gone
    assert set(after) == set(before)
    assert after[str(changed.resolve())]["mtime_ns"] == changed.stat().st_mtime_ns
    assert {p: r for p, r in after.items() if p != str(changed.resolve())} == \
        {p: r for p, r in before.items() if p != str(changed.resolve())}


def test_a_run_stopped_midway_keeps_what_it_finished_and_the_rerun_does_the_rest(photos, tmp_path, local_ray,
                                                                                 monkeypatch):
    """The driver stops after its first part (as on Ctrl-C); a killed run's unfinished part is left too."""
    from desktop_app.cluster import job

    monkeypatch.setattr(job, "FOLDERS_PER_TASK", 1)  # photos listed one at a time: 11 do not all arrive at once
    paths = list(find_photos([photos / "samples", photos / "copies"]))
    out = tmp_path / "out"

    def stop(summary) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        caption_on_ray(paths, out, JobOptions(batch_size=2, rows_per_part=2), on_part=stop)
    kept = rows_by_path(out)
    assert 2 <= len(kept) < len(paths)
    (out / f"{results.TEMP_PREFIX}1-part-0-000001.parquet").write_bytes(b"PAR1 cut short")

    rest = caption_on_ray(paths, out, JobOptions(batch_size=2))
    assert rest.already_done == len(kept) and rest.captioned + rest.failed == len(paths) - len(kept)
    assert set(rows_by_path(out)) == {str(p.resolve()) for p in paths}
    assert not list(out.glob(results.TEMP_PREFIX + "*"))


def test_results_written_back_give_the_photos_their_captions_and_keep_a_persons(photos, tmp_path, local_ray):
    """``cluster write``: every photo still as captioned gets its row's caption (the app's reader, exiftool and
    the library index agree); a photo changed since is skipped in words, a person's caption is kept."""
    person = photos / "copies" / "coffee.jpg"
    write_caption(person, CaptionRecord("Grandma's coffee, Lisbon 1998", PERSON))
    paths = list(find_photos([photos / "samples", photos / "copies"]))
    out = tmp_path / "out"
    caption_on_ray(paths, out, JobOptions(batch_size=4))
    changed = photos / "copies" / "rocket.jpg"
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    changed_bytes = changed.read_bytes()

    before = {p: (p.read_bytes(), p.stat().st_mtime_ns, exiftool(p).get("XMP-dc:Description")) for p in paths}
    index = tmp_path / "index.sqlite"
    back = run("cluster", "write", out, "--index", index, index=tmp_path / "unused.sqlite")
    assert back.returncode == 0, back.stderr
    assert "written 8, kept a person's caption 1, skipped 2, failed 0 of 11 photos" in back.stderr
    assert f"1 {CHANGED}" in back.stderr and f"1 {NOT_CAPTIONED}" in back.stderr
    assert f"kept: {person.resolve()}: kept the caption a person wrote" in back.stderr
    assert changed.read_bytes() == changed_bytes
    assert read_caption(person).text == "Grandma's coffee, Lisbon 1998"

    library = LibraryIndex(index)
    for path, row in rows_by_path(out).items():
        if row["status"] != "captioned" or Path(path) in (changed.resolve(), person.resolve()):
            continue
        saved = read_caption(Path(path))
        assert (saved.text, saved.source, saved.model_id) == (row["caption"], MACHINE, row["model_id"]), path
        assert exiftool(path)["XMP-dc:Description"] == row["caption"], path
        assert library.get(Path(path)).caption == row["caption"]
        assert library.details_of(Path(path)).confidence == row["confidence"]
    assert library.get(person).caption == "Grandma's coffee, Lisbon 1998"
    again = run("cluster", "write", out, "--index", index, index=tmp_path / "unused.sqlite")
    assert "written 0, kept a person's caption 1, skipped 10, failed 0 of 11 photos" in again.stderr
    assert f"8 {ALREADY}" in again.stderr  # an embedded write changed their size: not "changed since captioned"

    undo = run("cluster", "undo", out, "--index", index, index=tmp_path / "unused.sqlite")  # the first write-back:
    assert undo.returncode == 0, undo.stderr  # the second wrote nothing, so it left no journal
    assert "put back 8 photos, left 0 as they are" in undo.stderr
    for path in paths:  # byte for byte, modification time and all, as exiftool reads them
        assert (path.read_bytes(), path.stat().st_mtime_ns, exiftool(path).get("XMP-dc:Description")) == \
            before[path], path
    assert not LibraryIndex(index).get(photos / "samples" / "rocket.jpg").caption  # indexed as it is again
    nothing = run("cluster", "undo", out, "--index", index, index=tmp_path / "unused.sqlite")
    assert nothing.returncode == 2 and "holds no cluster write to undo" in nothing.stderr
    rewritten = run("cluster", "write", out, "--index", index, index=tmp_path / "unused.sqlite")
    assert "written 8, kept a person's caption 1, skipped 2" in rewritten.stderr  # as captioned again


def test_the_pool_leaves_cpus_for_reading():
    """Issue 31: a pool that takes every CPU leaves the decode tasks none, and Ray Data waits forever."""
    two = plan_pool(2, 0, JobOptions())
    assert (two.actors, two.actor_cpus, two.decode_cpus) == (1, 1, 1)
    sixteen = plan_pool(16, 0, JobOptions())
    assert sixteen.actors * sixteen.actor_cpus <= 16 - 4 and sixteen.actors == 6
    gpus = plan_pool(16, 4, JobOptions())
    assert (gpus.actors, gpus.actor_gpus) == (4, 1) and gpus.actors * gpus.actor_cpus <= 12
    with pytest.raises(PoolError):
        plan_pool(1, 0, JobOptions())


def test_a_scan_of_the_results_drops_superseded_rows_and_keeps_done_photos_as_keys(tmp_path):
    """The done photos are a sorted array of 64-bit keys (no Python object per photo); a photo with rows in two
    parts keeps only the newer part's, and a failed photo counts as done only without --retry-failed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def row(path: str, mtime: int, status: str = "captioned") -> dict:
        return {"path": path, "size": 10, "mtime_ns": mtime, "status": status, "message": "", "model_id": "m",
                "caption": "c", "score": 0.0, "alternatives": [], "keywords": [], "confidence": 1.0,
                "needs_review": False}

    def write(name: str, rows: list[dict]) -> None:
        pq.write_table(pa.Table.from_pylist(rows, schema=results.SCHEMA), tmp_path / name)

    write("part-1-000001.parquet", [row("/a", 1), row("/b", 1, "failed"), row("/c", 1)])
    write("part-2-000001.parquet", [row("/a", 2), row("/d", 1, "failed")])
    (tmp_path / f"{results.TEMP_PREFIX}9-part-3-000001.parquet").write_bytes(b"cut short")
    scanned = results.scan(tmp_path, retry_failed=True)
    assert scanned.dropped == 1 and not list(tmp_path.glob(results.TEMP_PREFIX + "*"))
    assert sorted(results.read_results(tmp_path).column("path").to_pylist()) == ["/a", "/b", "/c", "/d"]
    assert results.read_results(tmp_path).to_pylist()[-2]["mtime_ns"] == 2  # /a's newer row, in the newer part
    assert scanned.done.dtype == "uint64" and list(scanned.done) == sorted(keys_of(["/a", "/c"], [10, 10], [2, 1]))
    assert len(results.scan(tmp_path, retry_failed=False).done) == 4
    assert results.scan(tmp_path).dropped == 0


def test_sources_are_listed_in_ray_tasks_by_find_photos_rules_and_read_through_pyarrow_file_systems(photos, tmp_path,
                                                                                                    local_ray):
    """A folder SOURCE with --recursive: the photos find_photos finds (none hidden, none in a hidden folder, only
    photos), listed by Ray tasks; the same run through a file:// URI and through a pyarrow file system that is not
    the local one (a SubTreeFileSystem, read as bytes) gives the same captions."""
    import pyarrow.fs as pafs

    hidden = photos / "copies" / ".thumbnails"
    hidden.mkdir()
    shutil.copyfile(photos / "samples" / "rocket.jpg", hidden / "rocket.jpg")
    shutil.copyfile(photos / "samples" / "rocket.jpg", photos / "copies" / ".hidden.jpg")
    (photos / "copies" / "notes.txt").write_text("not a photo")
    expected = {str(p.resolve()) for p in find_photos([photos], recursive=True)}
    assert len(expected) == 11

    local = caption_on_ray([f"file://{photos}"], f"file://{tmp_path / 'out'}", JobOptions(batch_size=4,
                                                                                          recursive=True))
    assert (local.photos, local.captioned, local.failed) == (11, 10, 1)
    by_path = rows_by_path(tmp_path / "out")
    assert set(by_path) == expected

    subtree = pafs.SubTreeFileSystem(str(photos), pafs.LocalFileSystem())
    remote = caption_on_ray([Place(subtree, "samples", "subtree://"), Place(subtree, "copies", "subtree://")],
                            Place(pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem()), "out-subtree"),
                            JobOptions(batch_size=4))
    assert (remote.photos, remote.captioned, remote.failed) == (11, 10, 1)
    got = rows_by_path(tmp_path / "out-subtree")
    assert set(got) == {"subtree://" + str(Path(p).relative_to(photos.resolve())) for p in expected}
    for name, row in got.items():
        same = by_path[str(photos.resolve() / name.removeprefix("subtree://"))]
        assert {f: row[f] for f in (*FIELDS, "status", "size")} == {f: same[f] for f in (*FIELDS, "status", "size")}


def start_run(sources: list[Path], out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "desktop_app", "cluster", "caption", "--out", str(out),
                             "--batch-size", "2", "--rows-per-part", "2", *map(str, sources)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(condition, run: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert run.poll() is None, f"the run ended ({run.returncode}) first: {run.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def alive(processes: dict[int, int]) -> list[int]:
    return [pid for pid, start in processes.items() if local.start_time(pid) == start]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="Linux: processes are followed through /proc")
def test_leftovers_are_stopped_only_for_a_run_whose_driver_is_gone_and_matched_by_start_time(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "STATE", tmp_path)
    gone = subprocess.Popen(["sleep", "60"])
    gone_start = local.start_time(gone.pid)
    gone.kill()
    gone.wait()
    orphan, other = (subprocess.Popen(["sleep", "60"]) for _ in range(2))
    try:
        def record(name: str, driver: tuple[int, int | None], processes: list[tuple[int, int]]) -> None:
            (tmp_path / f"{name}.json").write_text(json.dumps({"driver": driver, "processes": processes}))

        record("dead", (gone.pid, gone_start), [(orphan.pid, local.start_time(orphan.pid)),
                                                 (other.pid, local.start_time(other.pid) + 1)])  # pid reused
        record("alive", (os.getpid(), local.start_time(os.getpid())), [(other.pid, local.start_time(other.pid))])
        assert local.stop_leftovers() == [orphan.pid]
        assert orphan.wait(timeout=10) == -signal.SIGTERM and other.poll() is None
        assert sorted(p.name for p in tmp_path.iterdir()) == ["alive.json"]
    finally:
        for process in (orphan, other):
            process.kill()
            process.wait()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="Linux: processes are followed through /proc")
def test_a_stopped_or_killed_run_leaves_no_ray_behind_and_the_next_run_resumes(photos, tmp_path):
    """SIGTERM: the run stops Ray and keeps its parts (status 130). ``kill -9``: Ray's agents outlive the driver,
    so the next local run stops what the killed run's record names, runs to the end, and every photo is in the
    results once."""
    for round_ in range(6):
        shutil.copytree(photos / "copies", photos / f"more-{round_}")
    sources = sorted(p for p in photos.iterdir() if p.is_dir())
    out = tmp_path / "out"

    def captioning(run: subprocess.Popen) -> bool:  # Ray up, its processes recorded, the caption actor started
        record = local.STATE / f"{run.pid}.json"
        return record.exists() and any(b"CaptionActor" in Path(f"/proc/{pid}/cmdline").read_bytes()
                                       for pid in alive(local.processes_below(run.pid)))

    run = start_run(sources, out)
    wait_for(lambda: captioning(run), run)
    below = local.processes_below(run.pid)
    assert len(below) >= 5  # GCS, raylet, agents, workers
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130 and "stopped by SIGTERM; the parts written are kept" in stderr, stderr
    deadline = time.monotonic() + 15
    while alive(below) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(below), "left running after SIGTERM: " + ", ".join(map(str, alive(below)))
    assert not (local.STATE / f"{run.pid}.json").exists()

    run = start_run(sources, out)
    record = local.STATE / f"{run.pid}.json"
    wait_for(lambda: captioning(run), run)
    recorded = dict(map(tuple, json.loads(record.read_text())["processes"]))
    run.kill()
    run.communicate()
    time.sleep(1)
    assert alive(recorded), "nothing outlived the killed driver (then there is nothing to test)"

    resumed = run_cli = subprocess.run([sys.executable, "-m", "desktop_app", "cluster", "caption", "--out", str(out),
                                        *map(str, sources)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert run_cli.returncode == 1, resumed.stderr  # the broken photo
    assert not alive(recorded) and not record.exists()
    got = rows_by_path(out)  # one row per photo
    assert set(got) == {str(p.resolve()) for p in find_photos(sources)}


@pytest.fixture
def s3_server():
    """A local S3-compatible server (moto's, where moto_server is installed): its endpoint's URI options."""
    import socket

    if not shutil.which("moto_server"):
        pytest.skip("no local S3 server (moto_server) installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(["moto_server", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert server.poll() is None and time.monotonic() < deadline, "moto_server did not start"
        time.sleep(0.2)
    # allow_delayed_open: a small file goes up in one PUT (moto answers pyarrow's multipart completion wrongly)
    yield f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1&allow_delayed_open=true"
    server.terminate()
    server.wait()


def test_photos_and_results_on_object_storage_through_s3_uris(samples, tmp_path, s3_server, monkeypatch):
    """SOURCE and --out as s3:// URIs (a local S3 server): the photos are listed and read from the bucket, the
    results written there, named s3://bucket/key, with the CLI's captions; a rerun finds them all done."""
    import pyarrow.fs as pafs

    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        monkeypatch.setenv(name, value)
    bucket, _ = pafs.FileSystem.from_uri(f"s3://archive?{s3_server}&allow_bucket_creation=true")
    bucket.create_dir("archive")
    for photo in samples.iterdir():
        with bucket.open_output_stream(f"archive/photos/{photo.name}") as upload:
            upload.write(photo.read_bytes())
    source, out = f"s3://archive/photos?{s3_server}", f"s3://archive/results?{s3_server}"
    first = run("cluster", "caption", "--out", out, "--batch-size", "4", source, index=tmp_path / "i.sqlite")
    assert first.returncode == 0, first.stderr
    count = len(list(samples.iterdir()))
    assert f"captioned {count}, failed 0, already done 0 of {count} photos" in first.stderr

    cli = run("caption", "--dry-run", "-q", "--jsonl", tmp_path / "cli.jsonl", samples, index=tmp_path / "i.sqlite")
    assert cli.returncode == 0, cli.stderr
    expected = {Path(r["path"]).name: r for r in map(json.loads, (tmp_path / "cli.jsonl").read_text().splitlines())}
    got = results.read_results(Place(bucket, "archive/results")).to_pylist()
    assert {r["path"] for r in got} == {f"s3://archive/photos/{name}" for name in expected}
    for row in got:
        row["alternatives"] = [[a["caption"], a["score"]] for a in row["alternatives"]]
        line = expected[row["path"].rsplit("/", 1)[1]]
        assert {f: row[f] for f in FIELDS} == {f: line[f] for f in FIELDS}, row["path"]

    again = run("cluster", "caption", "--out", out, source, index=tmp_path / "i.sqlite")
    assert f"captioned 0, failed 0, already done {count} of {count} photos" in again.stderr, again.stderr
