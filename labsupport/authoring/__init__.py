"""Course tooling: build exercises from solutions, execute notebooks, grade submissions."""

import sys

# Every module here imports nbformat, which imports jsonschema, which imports rfc3987-syntax
# when it is installed (jupyter-events depends on it) and builds that package's Lark grammar on
# import: about 0.9 s of CPU in every process, for jsonschema's "iri" format check, which
# nbformat's validation never asks for. The grader starts a process per notebook, so this is
# paid per learner. Marking the module absent makes jsonschema skip that one checker (it
# imports it under ``suppress(ImportError)``); a process that imported it already keeps it.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
