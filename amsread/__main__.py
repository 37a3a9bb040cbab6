from amsread.cli import main

main()
