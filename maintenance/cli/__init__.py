"""The command line: invoke tasks over the procedures, shared by `invoke` and `maint`."""
