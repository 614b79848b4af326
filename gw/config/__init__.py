"""gw's config: ``load_tables(path)`` reads, checks and compiles it; ``describe``
prints the result as ``gw check`` does.

    tables = load_tables("config.yaml")
    print(describe(tables))
"""

from gw.config.compile import compile_tables, load_tables, log_warnings
from gw.config.describe import describe
from gw.errors import ConfigError

__all__ = ["ConfigError", "compile_tables", "describe", "load_tables", "log_warnings"]
