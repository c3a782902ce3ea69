"""Every module in this package is a group of commands; importing the package registers them all.

An area adds its commands by adding a module here that decorates functions with `@app.command()`.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
