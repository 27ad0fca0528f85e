from kcbatch.cli import main

main(prog_name="kcbatch")
