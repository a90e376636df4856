"""`kernelsvc` and `python -m kernelsvc.supervisor` (what kernelspecs run).

For `start`, the fork server is started first, before the supervisor's imports (click,
structlog, zmq, jupyter_client: ~150 ms), so that its own import of IPython runs
alongside them and the first worker is ready sooner; then the public sockets are bound
(earlybind.py), so a client's first requests wait for the loop instead of being refused.
"""

import sys


def run() -> None:
    argv = sys.argv[2:]
    if sys.argv[1:2] == ["start"] and "--help" not in argv:
        from kernelsvc.supervisor.earlybind import argv_option, bind_early
        from kernelsvc.supervisor.forkserver import prestart

        prestart(argv_option(argv, "--preload") or "")
        bind_early(argv)

    from kernelsvc.supervisor.cli import main

    main()


if __name__ == "__main__":
    run()
