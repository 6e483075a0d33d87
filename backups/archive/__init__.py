"""The stored form of a backup: object keys, manifest, compression, byte path, catalog.

Independent of PostgreSQL: what these modules know is bytes, keys and manifests.
"""
