"""A real single-node SLURM cluster for the `slurm` tests, brought up once per session.

Installed with apt-get where it is missing (CI machines are fresh Debian containers, as root);
the tests skip, saying why, only where that is impossible.
"""

from __future__ import annotations

import os

import pytest

from .cluster import Cluster, ensure_installed


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    reason = ensure_installed()
    if reason is None and os.geteuid() != 0:
        reason = "starting slurmd needs root"
    if reason is not None:
        pytest.skip(f"no SLURM cluster: {reason}")
    # a short path: the munge socket's must fit a Unix socket name (108 bytes)
    test_cluster = Cluster(tmp_path_factory.mktemp("slurm", numbered=True))
    test_cluster.start()
    try:
        yield test_cluster
    finally:
        test_cluster.stop()
