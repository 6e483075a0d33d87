"""invoke's root collection: `invoke --list` shows every namespace of the product."""

from maintenance.cli.collection import build_namespace

namespace = build_namespace()
