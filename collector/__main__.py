from collector.cli import main

main(prog_name="akdiag")
