"""How nodes are executed, as opposed to what they compute: runtime overrides, launchers."""
