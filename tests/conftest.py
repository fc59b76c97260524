"""Project-wide test configuration: hypothesis profiles.

``HYPOTHESIS_PROFILE=ci`` selects the thorough profile (CI); the default is quick.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# The conformance kit's opt-in plugin: fixtures, and a report header naming the backends under
# test, their framework versions and devices, and the relevant environment variables.
pytest_plugins = ["multisampled.conformance.pytest_plugin"]
