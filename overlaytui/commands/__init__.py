"""The subcommands of `overlaytui` (the lab's live in overlaytui.lab.cli)."""
