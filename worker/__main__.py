"""``python -P -m kernelsvc.worker``: run one worker process."""

from kernelsvc.worker.main import main

main()
