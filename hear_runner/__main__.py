from hear_runner.cli import main

main()
