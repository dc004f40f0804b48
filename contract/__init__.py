"""Standard-library facts shipped unchanged to jobs, functions and the emulator; imports nothing of the kit.

A function gets a module as a link in its folder (lambda/<function>/run_layout.py -> ../../contract/run_layout.py),
which its CDK asset holds as a copy of the target (stacks/constructs/functions.py), so it imports it by plain name.
"""
