"""The backup procedures behind the tasks: backup, globals, list, prune, drill, restore."""
