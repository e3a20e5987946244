import gzip
import shutil
import struct

import numpy as np
import pytest

from stn_core.mnist import FILES, MnistError, load_mnist, mnist_dir, read_idx


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


def test_reads_uncompressed_files_too(mnist_dir, tmp_path):
    raw = tmp_path / "t10k-labels-idx1-ubyte"
    raw.write_bytes(_raw_labels(mnist_dir))
    labels = read_idx(raw, md5=FILES["t10k-labels-idx1-ubyte"][0], magic=2049)
    assert labels.shape == (10000,) and labels[:3].tolist() == [7, 2, 1]


def test_a_truncated_file_fails_naming_it(mnist_dir, tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(_raw_labels(mnist_dir)[:5000])
    with pytest.raises(MnistError, match=r"t10k-labels-idx1-ubyte: truncated: 5000 bytes"):
        read_idx(path)


def test_a_truncated_gzip_stream_fails_clearly(mnist_dir, tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()[:2000])
    with pytest.raises(MnistError, match="t10k-labels-idx1-ubyte.gz: cannot read"):
        read_idx(path)


def test_a_wrong_magic_number_fails_clearly(mnist_dir, tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(struct.pack(">I", 0x12345678) + _raw_labels(mnist_dir)[4:])
    with pytest.raises(MnistError, match="not an unsigned-byte IDX file.*0x12345678"):
        read_idx(path)
    images_magic = struct.pack(">I", 2051) + _raw_labels(mnist_dir)[4:]
    path.write_bytes(images_magic)
    with pytest.raises(MnistError, match="magic number 2051, expected 2049"):
        read_idx(path, magic=2049)


def test_a_corrupted_byte_fails_the_checksum(mnist_dir, tmp_path):
    data = bytearray(_raw_labels(mnist_dir))
    data[100] = (data[100] + 1) % 10
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(bytes(data))
    with pytest.raises(MnistError, match="checksum mismatch"):
        read_idx(path, md5=FILES["t10k-labels-idx1-ubyte"][0])


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
