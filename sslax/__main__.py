from sslax.cli import main

main()
