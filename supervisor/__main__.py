from kernelsvc.supervisor.cli import main

main()
