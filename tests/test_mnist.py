import gzip
import hashlib
import shutil
import struct

import numpy as np
import pytest

from stn_core.mnist import (
    DIGIT_SIZE,
    FILES,
    SAMPLE_SIZE,
    TEST_DIGITS,
    MnistError,
    load_mnist,
    load_sample,
    mnist_dir,
    read_idx,
    sample_file,
)


def test_reads_the_real_files(mnist_dir):
    images, labels = load_mnist("test", mnist_dir, download=False)
    assert images.shape == (10000, 28, 28) and str(images.dtype) == "torch.uint8"
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert int(images.max()) == 255 and int(images[:, 0, 0].max()) == 0  # ink on a 0 background
    train_images, train_labels = load_mnist("train", mnist_dir, download=False)
    assert train_images.shape == (60000, 28, 28) and train_labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert np.bincount(train_labels.numpy()).min() > 5000


def _raw_labels(mnist_dir) -> bytes:
    with gzip.open(mnist_dir / "t10k-labels-idx1-ubyte.gz") as stream:
        return stream.read()


def _idx(array: np.ndarray) -> bytes:
    """``array`` (uint8) as an IDX file: magic 0x0000080N, N sizes, the bytes."""
    return struct.pack(f">I{array.ndim}I", 0x800 + array.ndim, *array.shape) + array.astype(np.uint8).tobytes()


@pytest.fixture(scope="module")
def sample_idx():
    """The shipped sample's labels and images as IDX files' bytes (no full MNIST needed)."""
    images, labels, _ = load_sample()
    return _idx(labels.numpy()), _idx(images.numpy())


def test_reads_uncompressed_files_too(mnist_dir, tmp_path):
    raw = tmp_path / "t10k-labels-idx1-ubyte"
    raw.write_bytes(_raw_labels(mnist_dir))
    labels = read_idx(raw, md5=FILES["t10k-labels-idx1-ubyte"][0], magic=2049)
    assert labels.shape == (10000,) and labels[:3].tolist() == [7, 2, 1]


def test_reads_idx_files_raw_and_gzipped(sample_idx, tmp_path):
    labels_idx, images_idx = sample_idx
    raw, packed = tmp_path / "labels-idx1-ubyte", tmp_path / "images-idx3-ubyte.gz"
    raw.write_bytes(labels_idx)
    packed.write_bytes(gzip.compress(images_idx))
    images, labels, _ = load_sample()
    assert np.array_equal(read_idx(raw, md5=hashlib.md5(labels_idx).hexdigest(), magic=2049), labels.numpy())
    assert np.array_equal(read_idx(packed, magic=2051), images.numpy())


def test_a_truncated_file_fails_naming_it(sample_idx, tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(sample_idx[0][:500])
    with pytest.raises(MnistError, match=r"t10k-labels-idx1-ubyte: truncated: 500 bytes"):
        read_idx(path)


def test_a_truncated_gzip_stream_fails_clearly(sample_idx, tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(sample_idx[1])[:2000])
    with pytest.raises(MnistError, match="t10k-images-idx3-ubyte.gz: cannot read"):
        read_idx(path)


def test_a_wrong_magic_number_fails_clearly(sample_idx, tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(struct.pack(">I", 0x12345678) + sample_idx[0][4:])
    with pytest.raises(MnistError, match="not an unsigned-byte IDX file.*0x12345678"):
        read_idx(path)
    images_magic = struct.pack(">I", 2051) + sample_idx[0][4:]
    path.write_bytes(images_magic)
    with pytest.raises(MnistError, match="magic number 2051, expected 2049"):
        read_idx(path, magic=2049)


def test_a_corrupted_byte_fails_the_checksum(sample_idx, tmp_path):
    data = bytearray(sample_idx[0])
    md5 = hashlib.md5(data).hexdigest()
    data[100] = (data[100] + 1) % 10
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(bytes(data))
    with pytest.raises(MnistError, match="checksum mismatch"):
        read_idx(path, md5=md5)


def test_the_shipped_sample_is_found_as_package_data_and_is_real_mnist():
    images, labels, test_index = load_sample()
    assert images.shape == (SAMPLE_SIZE, DIGIT_SIZE, DIGIT_SIZE) and str(images.dtype) == "torch.uint8"
    assert labels.shape == (SAMPLE_SIZE,) and set(labels.tolist()) == set(range(10))
    assert test_index.unique().numel() == SAMPLE_SIZE and 0 <= int(test_index.min()) and int(test_index.max()) < TEST_DIGITS
    assert sample_file().name == "mnist_test_sample.npz" and sample_file().is_file()
    with pytest.raises(MnistError, match="nowhere.npz: cannot read the shipped digit sample"):
        load_sample("nowhere.npz")


def test_missing_files_offline_say_where_to_put_them(tmp_path):
    empty = tmp_path / "nowhere"
    with pytest.raises(MnistError) as error:
        load_mnist("test", empty, mirrors=[])
    message = str(error.value)
    for name in FILES:
        assert f"{empty / name}.gz" in message
    assert "STN_DATA_DIR" in message


def test_downloads_missing_files_from_a_mirror(mnist_dir, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(mnist_dir / name, mirror / name)
    target = tmp_path / "data"
    unreachable = (tmp_path / "no-such-mirror").as_uri() + "/"
    images, labels = load_mnist("test", target, mirrors=[unreachable, mirror.as_uri() + "/"])
    assert images.shape == (10000, 28, 28) and labels[0] == 7
    assert sorted(p.name for p in target.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("STN_DATA_DIR", str(tmp_path))
    assert mnist_dir() == tmp_path
    assert mnist_dir("elsewhere").name == "elsewhere"
    monkeypatch.delenv("STN_DATA_DIR")
    assert str(mnist_dir()) == "data/mnist"


def test_unknown_split():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_mnist("validation")
