from moxcli.entry import main

main()
