"""A process of a multi-process launch for the launch tests: starts jax.distributed through
``iuie.runtime.launch`` (flags as the binaries take them) and all-gathers the process indices."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def main(argv: list[str]) -> int:
    from iuie.runtime import launch

    parser = argparse.ArgumentParser()
    launch.add_multiprocess_flags(parser)
    args = parser.parse_args(argv)
    try:
        started = launch.maybe_initialize_distributed(args)
    except launch.LaunchError as e:
        launch.print_error(e)
        return launch.EXIT_CONFIG_ERROR
    import jax
    import jax.numpy as jnp
    from jax.experimental import multihost_utils

    gathered = multihost_utils.process_allgather(jnp.array([jax.process_index()]))
    print(
        json.dumps(
            {
                "started": started,
                "process": jax.process_index(),
                "count": jax.process_count(),
                "devices": jax.device_count(),
                "local_devices": jax.local_device_count(),
                "gathered": np.asarray(gathered).ravel().tolist(),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
