"""``authstate bench``: what each mode, store and peer costs, measured side by side.

Everything runs from ``authstate bench`` (``authstate.bench.runner``). Nothing in the
library or the server imports this package (pyproject [tool.importlinter] checks it).
"""
