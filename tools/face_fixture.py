"""Make tests/fixtures/face.jpg: scikit-image's astronaut.png (NASA portrait of Eileen Collins, public domain),
384x384, read from the scikit-image wheel (pip download --no-deps scikit-image; not an emocli dependency).

    python tools/face_fixture.py [--wheel scikit_image-*.whl]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "face.jpg"

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        whl = args.wheel
        if whl is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
                            "--only-binary=:all:", "scikit-image==0.25.2"], check=True)
            whl = next(Path(tmp).glob("scikit_image-*.whl"))
        with zipfile.ZipFile(whl) as z:
            image = Image.open(io.BytesIO(z.read("skimage/data/astronaut.png"))).convert("RGB")
    image.resize((384, 384), Image.LANCZOS).save(OUT, quality=85)
    print(f"{OUT}: {OUT.stat().st_size:,} bytes")
