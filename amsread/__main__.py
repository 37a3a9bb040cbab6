from amsread.app.cli import main

main()
