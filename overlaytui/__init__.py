"""overlaytui: a terminal dashboard that makes Docker Swarm overlay networks visible and testable."""

__version__ = "0.1.0"
