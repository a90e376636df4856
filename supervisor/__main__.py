"""`kernelsvc` and `python -m kernelsvc.supervisor` (what kernelspecs run).

For `start`, the fork server is started first, before the supervisor's imports (click,
structlog, zmq, jupyter_client: ~150 ms), so that its own import of IPython runs
alongside them and the first worker is ready sooner.
"""

import sys


def run() -> None:
    if sys.argv[1:2] == ["start"]:
        from kernelsvc.supervisor.forkserver import prestart

        prestart(sys.argv[2:])

    from kernelsvc.supervisor.cli import main

    main()


if __name__ == "__main__":
    run()
