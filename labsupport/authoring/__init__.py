"""Course tooling: build exercises from solutions, execute notebooks, grade submissions."""
