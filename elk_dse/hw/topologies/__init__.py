"""Topologies that live in modules of their own: every module of this package is imported (and so registers
itself with ``elk_dse.hw.topology.register_topology``) when the registry is first used. Adding one is adding
a module here; nothing else is edited."""

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_info.name}")
