"""ICE field offices: detainers prioritised by level, custody and removal tracking."""
