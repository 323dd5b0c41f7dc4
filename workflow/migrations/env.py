"""Alembic environment: the engine comes from rectiflow (``rectiflow db upgrade``)."""

from __future__ import annotations

from alembic import context

from workflow.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` invocation: build one from settings
    from config.settings import load_settings
    from workflow.db import make_engine

    engine = make_engine(load_settings().database_url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
