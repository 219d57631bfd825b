from tickertag.cli import main

main()
