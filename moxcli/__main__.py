from moxcli.cli import main

main()
