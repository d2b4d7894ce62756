"""The conda environment and the lock file carry the same exact pins."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def lock_pins():
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def test_every_lock_line_is_an_exact_pin():
    pins = lock_pins()
    assert all("==" in p for p in pins)
    assert "torch==2.13.0" in pins


def test_conda_env_matches_lock():
    env = yaml.safe_load((ROOT / "envs" / "bioprobe.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) == lock_pins()
