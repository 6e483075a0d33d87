"""Where backups are kept: one interface over a local directory, S3 and Google Cloud Storage."""

from .base import ObjectExists, ObjectInfo, ObjectNotFound, Store, StoreError, Upload, open_store

__all__ = [
    "ObjectExists",
    "ObjectInfo",
    "ObjectNotFound",
    "Store",
    "StoreError",
    "Upload",
    "open_store",
]
