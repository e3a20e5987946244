"""The full-range pair (the FULL regime's ST-CNN and CNN) beside the app's default RTS pair:
its angle curves, recomputed, are what its cards say, and the default ST-CNN's error
on real handwriting, recomputed, is what the README says."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stn_core import load
from stn_core.distortions import as_float_images
from stn_core.mnist import load_mnist
from stn_core.robustness import ANGLES, angle_curve
from stn_lab.service import DEFAULT_MODEL, InferenceService

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / "pretrained"
USPS = ROOT.parent / "shared" / "data" / "usps" / "usps-test.npz"
FULL_PAIR = ("full-st-cnn-affine", "full-cnn")


def test_the_full_range_pair_ships_and_the_page_serves_it_as_one_choice():
    for name in FULL_PAIR:
        assert load(PRETRAINED / f"{name}.safetensors").card.regime == "FULL"
    choice = InferenceService(PRETRAINED, device="cpu").choice(FULL_PAIR[0])
    assert choice.title == "FULL · ST-CNN Aff" and choice.cnn.card.name == FULL_PAIR[1]


@pytest.mark.slow
@pytest.mark.parametrize("name", FULL_PAIR)
def test_the_full_range_pairs_angle_curve_recomputed_from_the_test_set_matches_its_card(name, mnist_dir):
    model = load(PRETRAINED / f"{name}.safetensors")
    images, labels = load_mnist("test", mnist_dir)
    curve = angle_curve(model, as_float_images(images), labels)
    assert list(curve) == list(ANGLES)
    recorded = {int(angle): error for angle, error in model.card.angle_error.items()}
    assert curve == pytest.approx(recorded, abs=1e-3)


def _readme_usps_row() -> list[str]:
    """The cells of the README's 'USPS, uploaded' row of the real-handwriting table."""
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| USPS, uploaded \|(.*)\|$", readme, re.M)
    assert len(rows) == 1, "the README has one real-handwriting table with a 'USPS, uploaded' row"
    return [cell.strip() for cell in rows[0].split("|")]


@pytest.mark.slow
def test_the_default_st_cnns_usps_error_recomputed_matches_the_readme(tmp_path):
    if not USPS.exists():
        pytest.skip(f"the USPS development set is not at {USPS}")
    out = tmp_path / "usps.json"
    model = f"pretrained/{DEFAULT_MODEL}.safetensors"
    command = [sys.executable, "-m", "benchmarks.bench_handwriting", "--model", model, "--usps-only", "--json", str(out)]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env={**os.environ, "STN_USPS": str(USPS)})
    [error] = json.loads(out.read_text())["results"]["USPS, uploaded"]["error"].values()
    digits, st_error = _readme_usps_row()[:2]
    assert digits == "2,007" and float(st_error) == pytest.approx(error, abs=1e-9)


@pytest.mark.slow
def test_two_models_of_one_name_get_a_column_each_in_the_handwriting_benchmark(tmp_path):
    """A shipped model and a trial run of the same regime and kind once shared one column:
    the second's errors overwrote the first's."""
    if not USPS.exists():
        pytest.skip(f"the USPS development set is not at {USPS}")
    model = f"pretrained/{DEFAULT_MODEL}.safetensors"
    for suffix in (".safetensors", ".json"):  # the "trial": a copy, elsewhere
        shutil.copy(ROOT / "pretrained" / f"{DEFAULT_MODEL}{suffix}", tmp_path)
    trial = str(tmp_path / f"{DEFAULT_MODEL}.safetensors")
    out = tmp_path / "usps.json"
    command = [sys.executable, "-m", "benchmarks.bench_handwriting", "--model", model, "--cnn", trial, "--usps-only"]
    env = {**os.environ, "STN_USPS": str(USPS)}
    subprocess.run([*command, "--json", str(out)], cwd=ROOT, check=True, capture_output=True, env=env)
    columns = json.loads(out.read_text())["results"]["USPS, uploaded"]["error"]
    assert len(columns) == 2 and len(set(columns.values())) == 1  # the same weights twice: two equal columns
