"""PostgreSQL client tools for dumps and restores: versions, snapshots, scratch databases."""
