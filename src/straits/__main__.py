from straits.cli import main

main()
