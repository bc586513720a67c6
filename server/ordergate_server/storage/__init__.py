"""SQL storage through SQLAlchemy Core: tables, repositories, the unit of work and migrations.

Core, not the ORM, on purpose: the submit path is hot and the ORM costs about three times the
client CPU per statement (see DESIGN.md, "Where the time goes").
"""

from .database import Database, open_database

__all__ = ["Database", "open_database"]
