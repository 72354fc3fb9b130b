"""Where cluster data comes from: real Docker engines (swarm.py) or the simulated demo cluster.

Nothing here imports Textual: sources produce plain frozen values (overlaytui.model).
"""
