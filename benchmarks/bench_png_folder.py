"""How long ``load_dataset`` takes to read a folder of many small PNG files.

    python benchmarks/bench_png_folder.py [--n 60000] [--folder /tmp/tinygan-png-folder] [--colour]
        [--pillow] [--workers 1,2,4,8] [--repeat 3]

Writes ``n`` 28×28 images of the procedural digits (in colour with ``--colour``: each digit tinted)
as PNG files into ten class sub-folders (once: an existing folder of the same count is reused),
with tinygan's own encoder (filter None on every row) or, with ``--pillow``, with Pillow's, which
filters each row adaptively (Sub, Up and Paeth: the costly ones to undo). Then times
:func:`tinygan.load_dataset`'s reader on the folder with each number of reading threads, ``repeat``
times each, and prints the best and median seconds. The files sit in the page cache after the first
pass, so these are warm-cache times: what decoding costs, not the disk.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tinygan.data import make_digits
from tinygan.data.folder import load_folder
from tinygan.io.png import png_bytes


def encoder(pillow: bool) -> Callable[[np.ndarray], bytes]:
    if not pillow:
        return png_bytes
    from PIL import Image

    def pillow_bytes(pixels: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        return buffer.getvalue()

    return pillow_bytes


def write_folder(folder: Path, n: int, colour: bool, pillow: bool = False) -> None:
    marker = folder / f".written-{n}-{'colour' if colour else 'grey'}-{'pillow' if pillow else 'tinygan'}"
    if marker.exists():
        return
    images, labels = make_digits(n, seed=0)
    if colour:
        tint = np.random.default_rng(0).uniform(0.3, 1.0, (n, 1, 1, 3))
        images = np.round(images[..., None] * tint).astype(np.uint8)
    for k in range(10):
        (folder / f"class-{k}").mkdir(parents=True, exist_ok=True)
    encode = encoder(pillow)
    for i, (pixels, k) in enumerate(zip(images, labels, strict=True)):
        (folder / f"class-{k}" / f"{i:06d}.png").write_bytes(encode(pixels))
    marker.write_text("")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=60_000)
    parser.add_argument("--folder", default="/tmp/tinygan-png-folder")
    parser.add_argument("--colour", action="store_true")
    parser.add_argument("--pillow", action="store_true", help="write the files with Pillow (adaptive filters)")
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = Path(args.folder)
    start = time.perf_counter()
    write_folder(folder, args.n, args.colour, args.pillow)
    print(f"folder ready in {time.perf_counter() - start:.1f} s: {folder}")
    for workers in (int(w) for w in args.workers.split(",")):
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            x, labels, _ = load_folder(folder, workers=workers)
            times.append(time.perf_counter() - start)
        print(f"{workers} thread(s): {len(x)} images {x.shape[1:]} in best {min(times):.2f} s, "
              f"median {statistics.median(times):.2f} s")


if __name__ == "__main__":
    main()
