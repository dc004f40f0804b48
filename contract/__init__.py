"""Standard-library facts, and the few routines every job's script shares (chunks.py: reading CSV a chunk at a time;
workers.py: work spread over the CPUs), shipped unchanged to jobs, functions and the emulator; imports nothing of
the kit.

Everything imports a fact as `from contract.<module> import ...` (or `from contract import <module>`):
- a function's folder and a script-mode source folder link the package (lambda/<function>/contract ->
  ../../contract), which their assets hold as a copy of the target (stacks/constructs/functions.py, source_archive.py);
- a processing job's script gets the modules it imports bundled into its one file (bundle.py);
- the CDK side, the emulator and the tests import the package itself; processing/contract links it, so a job's
  script also runs as it is from the repository.
"""
