from snnlab.cli import main

main()
