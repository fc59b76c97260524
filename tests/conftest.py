"""Project-wide test configuration.

The hypothesis profiles are the conformance kit's (``multisampled.conformance.pytest_plugin``):
``dev`` by default here, ``HYPOTHESIS_PROFILE=ci`` for CI's thorough, derandomized run. The
kit's plugin also prints a report header naming the backends under test, their framework
versions and devices, and the relevant environment variables.
"""

import os
import sys

os.environ.setdefault("HYPOTHESIS_PROFILE", "dev")

from multisampled.conformance.pytest_plugin import register_profiles  # noqa: E402

register_profiles(overwrite=True)  # the kit's profiles, not hypothesis's built-in "ci"
# helpers shared by test modules (kit_subprocess), importable under --import-mode=importlib
sys.path.insert(0, os.path.dirname(__file__))

pytest_plugins = ["multisampled.conformance.pytest_plugin"]
