"""Probes that measure the overlay itself: ping loss/RTT, path MTU, iperf3 throughput."""
