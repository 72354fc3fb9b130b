"""The dashboard's panes: each renders a View (snapshot, history, probes, selection, filter) and keeps no
cluster state of its own."""
