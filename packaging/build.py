"""Build the standalone one-folder app with PyInstaller: ``python packaging/build.py [--cpu-only]``.

Writes ``dist/photocaption[-cpu]/`` (run ``photocaption``, or ``install.sh`` to add it to the
desktop menu) and a ``.tar.gz`` of it, and prints both sizes.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from desktop_app.bundle.format import BundleError, load_bundle  # noqa: E402
from desktop_app.resources import APP_ICON, DEFAULT_BUNDLE  # noqa: E402


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def build(dist: Path, cpu_only: bool) -> Path:
    try:
        load_bundle(DEFAULT_BUNDLE)
    except BundleError as exc:
        raise SystemExit(f"cannot package: the default model bundle is not usable ({exc})")
    name = "photocaption-cpu" if cpu_only else "photocaption"
    work = ROOT / "build" / name
    env = dict(os.environ, PHOTOCAPTION_CPU_ONLY="1" if cpu_only else "0")
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
                    "--distpath", str(work / "dist"), "--workpath", str(work / "work"),
                    str(ROOT / "packaging" / "photocaption.spec")], check=True, env=env)
    app = dist / name
    if app.exists():
        shutil.rmtree(app)
    dist.mkdir(parents=True, exist_ok=True)
    shutil.move(str(work / "dist" / "photocaption"), app)
    for entry in ("photocaption.desktop", "photocaption-describe.desktop"):
        shutil.copy(ROOT / "packaging" / entry, app / entry)
    shutil.copy(APP_ICON, app / "photocaption.svg")
    shutil.copy(ROOT / "packaging" / "install.sh", app / "install.sh")
    return app


def archive(app: Path) -> Path:
    machine = platform.machine().lower()
    target = app.parent / f"{app.name}-{platform.system().lower()}-{machine}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        tar.add(app, arcname=app.name)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-only", action="store_true",
                        help="leave out onnxruntime's CUDA/TensorRT providers (much smaller; always runs on the CPU)")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the app folder goes")
    parser.add_argument("--no-archive", action="store_true", help="skip the .tar.gz")
    args = parser.parse_args()
    app = build(args.dist, args.cpu_only)
    print(f"app folder: {app} ({folder_size(app) / 2**20:.0f} MiB)")
    if not args.no_archive:
        tar = archive(app)
        print(f"archive:    {tar} ({tar.stat().st_size / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
