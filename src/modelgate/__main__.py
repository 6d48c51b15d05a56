from modelgate.cli import main

main()
