from medml_cli.cli import main

main()
