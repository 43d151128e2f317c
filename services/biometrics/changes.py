"""The change log of a service's gallery: one row per change of a gallery tenprint.

Each service's models declare the table in their own metadata; the store writes and replays it
(see `store`). Declaring it needs neither numpy nor hnswlib.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table

CHANGES_TABLE = "biometric_changes"
OP_ENROLL = "enroll"
OP_DELETE = "delete"


def biometric_changes_table(metadata: MetaData) -> Table:
    """The change log of a service's gallery, in that service's own metadata."""
    return Table(
        CHANGES_TABLE,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("gallery_key", String(40), nullable=False),
        Column("op", String(8), nullable=False),
        # The key's whole tenprint after the change (empty for a deletion).
        Column("tenprint", LargeBinary, nullable=False),
    )
