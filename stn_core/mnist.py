"""MNIST from its four standard IDX files, checked byte for byte.

The folder is, in order of precedence: the ``data_dir`` argument (``--data-dir`` on the
command line), the ``STN_DATA_DIR`` environment variable, then ``data/mnist``. Each file
may be stored raw or gzipped. Its uncompressed bytes must match the published MD5; a
corrupt, truncated or foreign file raises :class:`MnistError` naming the file and the fault.

>>> images, labels = load_mnist("test")  # doctest: +SKIP
>>> images.shape, images.dtype, labels[:3].tolist()  # doctest: +SKIP
(torch.Size([10000, 28, 28]), torch.uint8, [7, 2, 1])
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tempfile
import urllib.request
from importlib import resources
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "DIGIT_SIZE",
    "FILES",
    "MIRRORS",
    "MnistError",
    "SAMPLE_SIZE",
    "TEST_DIGITS",
    "TRAIN_DIGITS",
    "load_mnist",
    "load_sample",
    "mnist_dir",
    "read_idx",
    "sample_file",
]

DIGIT_SIZE = 28  # every MNIST digit is DIGIT_SIZE x DIGIT_SIZE pixels
TRAIN_DIGITS, TEST_DIGITS = 60_000, 10_000  # digits in the training and the test split

# name -> (MD5 of the uncompressed file, IDX magic number)
FILES = {
    "train-images-idx3-ubyte": ("6bbc9ace898e44ae57da46a324031adb", 2051),
    "train-labels-idx1-ubyte": ("a25bea736e30d166cdddb491f175f624", 2049),
    "t10k-images-idx3-ubyte": ("2646ac647ad5339dbf082846283269ea", 2051),
    "t10k-labels-idx1-ubyte": ("27ae3e4e09519cfbb04c329615203637", 2049),
}
SPLITS = {"train": "train", "test": "t10k"}
# Canonical copies of the gzipped files, tried in order when a file is missing.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
DEFAULT_DIR = "data/mnist"


class MnistError(RuntimeError):
    """A missing, corrupt, truncated or unexpected MNIST file."""


def mnist_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The MNIST folder: ``data_dir``, else ``$STN_DATA_DIR``, else ``data/mnist``."""
    return Path(data_dir or os.environ.get("STN_DATA_DIR") or DEFAULT_DIR)


def read_idx(path: str | os.PathLike, *, md5: str | None = None, magic: int | None = None) -> np.ndarray:
    """Read one unsigned-byte IDX file (raw or ``.gz``) into a numpy array.

    Args:
        path: the file.
        md5: expected MD5 of the uncompressed bytes, checked when given.
        magic: expected magic number (2049 labels, 2051 images), checked when given.

    Raises:
        MnistError: on a bad gzip stream, wrong magic number, a size that disagrees with
            the header, or a checksum mismatch, naming the file.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                data = stream.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise MnistError(f"{path}: cannot read ({error}); the file is damaged, delete it and fetch it again") from None
    if len(data) < 4:
        raise MnistError(f"{path}: truncated: {len(data)} bytes, shorter than the 4-byte IDX header")
    found_magic = struct.unpack(">I", data[:4])[0]
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08 or not 1 <= data[3] <= 4:
        raise MnistError(
            f"{path}: not an unsigned-byte IDX file (magic number 0x{found_magic:08x}; "
            "expected 0x00000801 for labels or 0x00000803 for images)"
        )
    if magic is not None and found_magic != magic:
        raise MnistError(f"{path}: magic number {found_magic}, expected {magic}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MnistError(f"{path}: truncated inside its header ({len(data)} of {header} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "too long"
        raise MnistError(f"{path}: {state}: {len(data)} bytes, its header {shape} needs {expected}")
    if md5 is not None:
        digest = hashlib.md5(data).hexdigest()
        if digest != md5:
            raise MnistError(f"{path}: checksum mismatch (MD5 {digest}, expected {md5}); the file is corrupt")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _download(name: str, folder: Path, mirrors) -> Path | None:
    """Fetch ``name.gz`` from the first mirror that answers; ``None`` if none does."""
    target = folder / f"{name}.gz"
    for mirror in mirrors:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with urllib.request.urlopen(f"{mirror}{name}.gz", timeout=10) as response:
                with tempfile.NamedTemporaryFile(dir=folder, delete=False) as partial:
                    shutil.copyfileobj(response, partial)
            os.replace(partial.name, target)  # never leave a half-written file under the real name
            return target
        except OSError:
            continue
    return None


def _missing_message(folder: Path, missing: list[str]) -> str:
    names = "\n".join(f"  {folder / name}.gz" for name in FILES)
    return (
        f"MNIST not found: {', '.join(missing)} missing from {folder.resolve()} and no download "
        f"mirror could be reached.\nPut the four standard files (raw or .gz) at:\n{names}\n"
        "or point --data-dir / STN_DATA_DIR at the folder that holds them."
    )


def load_mnist(split: str, data_dir=None, *, download: bool = True, mirrors=MIRRORS):
    """One MNIST split as tensors.

    Args:
        split: ``"train"`` (``TRAIN_DIGITS``, 60,000 digits) or ``"test"`` (``TEST_DIGITS``, 10,000).
        data_dir: the folder (see module docstring).
        download: try ``mirrors`` for missing files.

    Returns:
        ``images`` ``(N, 28, 28)`` uint8 (ink bright on 0) and ``labels`` ``(N,)`` int64.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = mnist_dir(data_dir)
    arrays = []
    for kind in ("images", "labels"):
        name = f"{SPLITS[split]}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
        md5, magic = FILES[name]
        path = _find(folder, name) or (_download(name, folder, mirrors) if download else None)
        if path is None:
            raise MnistError(_missing_message(folder, [n for n in FILES if _find(folder, n) is None]))
        arrays.append(read_idx(path, md5=md5, magic=magic))
    images, labels = arrays
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


# A fixed sample of real test digits ships inside the package (stn_core/data/), for the
# library's tests, the app's sample picker and batch view, and the error on the shipped
# sample in each model card: 1,000 digits drawn without replacement with this seed.
SAMPLE_SIZE, SAMPLE_SEED = 1000, 0


def sample_file():
    """The shipped sample's file, found with :mod:`importlib.resources` (works installed too)."""
    return resources.files(__package__) / "data" / "mnist_test_sample.npz"


def write_sample(data_dir=None, path=None, size: int = SAMPLE_SIZE, seed: int = SAMPLE_SEED) -> Path:
    """Save ``size`` random MNIST test digits (sorted by test-set index) as compressed npz
    (by default over the shipped sample, in a source checkout)."""
    path = Path(str(sample_file())) if path is None else path
    images, labels = load_mnist("test", data_dir)
    index = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))[:size].sort().values
    np.savez_compressed(path, images=images[index].numpy(), labels=labels[index].numpy(), test_index=index.numpy())
    return Path(path)


def load_sample(path=None):
    """The shipped sample (or the one at ``path``): ``images`` ``(1000, 28, 28)`` uint8,
    ``labels`` ``(1000,)`` int64, and each digit's index in the MNIST test set."""
    source = sample_file() if path is None else Path(path)
    try:
        with resources.as_file(source) as real, np.load(real, allow_pickle=False) as data:
            return torch.from_numpy(data["images"]), torch.from_numpy(data["labels"]), torch.from_numpy(data["test_index"])
    except (OSError, KeyError, ValueError) as error:
        raise MnistError(f"{source.name}: cannot read the shipped digit sample ({error})") from None


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m stn_core.mnist", description="Write the shipped sample of MNIST test digits."
    )
    parser.add_argument("--data-dir", help="MNIST folder (default: $STN_DATA_DIR, else data/mnist)")
    parser.add_argument("--out", type=Path, help="default: the shipped sample, stn_core/data/mnist_test_sample.npz")
    args = parser.parse_args()
    print(write_sample(args.data_dir, args.out))
