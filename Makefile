# Thin wrapper for people who type `make`: everything lives in ./lab.
.PHONY: lab setup test doctor notebooks exercises
lab:
	./lab start
setup:
	./lab setup
test:
	./lab test
doctor:
	./lab doctor
# Course authors: re-run every lesson and solution, then regenerate exercises/.
notebooks:
	.venv/bin/python -m labsupport execute notebooks/*.ipynb solutions/*.ipynb
	.venv/bin/python -m labsupport build-exercises
