"""A real multi-node Docker Swarm on one Linux machine, with fault injection (`overlaytui lab`)."""
