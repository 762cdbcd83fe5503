"""Write the app's example gallery: 6 pairs of MNIST test digits as 280x280 black-on-white PNGs.

MNIST itself never goes into the repo; these 12 digits are the only ones, re-made with
`python examples/make_examples.py [MNIST folder]`. Files are `pair<k>_<first|second>_<digit>.png`;
app.py pairs them by name.
"""

import sys
from pathlib import Path

import PIL.Image

from digitpair.core.data import load_mnist

PAIRS = [(2, 7), (8, 3), (5, 5), (0, 9), (9, 1), (4, 6)]  # first <= second for half of them
HERE = Path(__file__).resolve().parent


def main(data_dir: str | None = None) -> None:
    images, labels = load_mnist(False, data_dir, download=False)
    used = {
        d: 0 for d in range(10)
    }  # the n-th use of a digit takes its n-th test image: two different 5s
    for k, pair in enumerate(PAIRS):
        for box, digit in zip(("first", "second"), pair):
            index = int((labels == digit).nonzero()[used[digit], 0])
            used[digit] += 1
            drawing = PIL.Image.fromarray(
                255 - images[index].numpy()
            )  # MNIST is white on black; paper is white
            drawing.resize((280, 280), PIL.Image.Resampling.BICUBIC).save(
                HERE / f"pair{k}_{box}_{digit}.png"
            )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
