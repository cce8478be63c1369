from runstream.command import main

main()
