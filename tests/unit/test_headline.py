"""The landing screen's words (analysis/headline.py): a finding in a few words with its subject, problems worst
first with services updating, the panes' badges, what findings name and the overlay the Loss pane opens on.
Pure: no Textual."""

from __future__ import annotations

import subprocess
import sys

from overlaytui.analysis.findings import Finding, Severity
from overlaytui.analysis.headline import badges, headline, named, problems, short, summary_line, worst_overlay
from overlaytui.model import ClusterSnapshot, Network, Node, Service


def node(name: str) -> Node:
    return Node(f"id-{name}", name, "worker", "ready", "active", f"10.0.0.{name[-1]}")


def network(name: str) -> Network:
    return Network(f"id-{name}", name, "overlay", "swarm", None, None, None, None, False, False, False, False)


def service(name: str, update: str = "", running: int = 3, desired: int = 3) -> Service:
    return Service(f"id-{name}", name, "replicated", desired, "vip", (), (), "img", running, desired, update)


SNAP = ClusterSnapshot(0.0, (), "s", nodes=tuple(node(n) for n in ("node1", "node2", "node3", "node4")),
                       services=(service("api", "updating", 2), service("web")),
                       networks=tuple(network(n) for n in ("backend", "frontend", "payments")))


def finding(check: str, severity: Severity, kind: str, subject: str, summary: str, key: str = "",
            details: tuple = ()) -> Finding:
    return Finding(check, severity, kind, subject, summary, "evidence", "remedy", key, details)


LOSS = finding("loss.bad", Severity.ERROR, "node", "node4",
               "node4 loses ~2.0 % of the overlay packets through it (both ways, 24 pairs on backend, frontend)",
               "id-node4", (finding("loss.bad", Severity.ERROR, "pair", "node1 -> node4 on frontend", "2 %",
                                    "frontend"),))
HOLE = finding("mtu.black_hole", Severity.ERROR, "node", "node3", "node3's underlay fits 1350-byte overlay "
               "packets: larger ones vanish on every path through it (frontend, payments)", "id-node3")
NET_HOLE = finding("mtu.black_hole", Severity.ERROR, "network", "payments",
                   "MTU black hole on payments: packets above 1400 bytes vanish", "payments")
REPLICAS = finding("service.replicas", Severity.WARNING, "service", "api", "api runs 2 of 3 tasks", "api")
DOWN = finding("node.down", Severity.ERROR, "node", "node2", "node2 is down", "id-node2")
PAIR = finding("latency.high", Severity.WARNING, "pair", "node1 <-> node3", "slow overlay: RTT avg 25.00 ms",
               "backend")
NOTE = finding("vip.idle_timeout", Severity.INFO, "swarm", "services", "7 services behind a VIP: ...")


def test_a_finding_in_a_few_words_with_its_subject():
    assert short(LOSS) == "loss node4 ~2.0 %"
    assert short(HOLE) == "MTU black hole node3 on frontend +1 (fits 1350)"
    assert short(NET_HOLE) == "MTU black hole payments (fits 1400)"
    assert short(DOWN) == "node2 is down"
    assert short(PAIR) == "node1 <-> node3: slow overlay"  # the subject said when the summary does not


def test_problems_worst_first_with_the_updates_and_no_notes():
    found = problems(SNAP, [PAIR, LOSS, NOTE, REPLICAS])
    assert summary_line(found) == "✖ loss node4 ~2.0 % · ⚠ node1 <-> node3: slow overlay · ⚠ api updating (2/3 " \
                                  "running)"  # api's task short while it updates: said once, by the update
    other = problems(SNAP, [finding("service.replicas", Severity.ERROR, "service", "api", "api runs 0 of 3 tasks",
                                    "api")])
    assert [p.text for p in other] == ["api runs 0 of 3 tasks", "api updating (2/3 running)"]  # an error stays


def test_badges_count_each_pane_s_problems_and_the_worst():
    found = problems(SNAP, [LOSS, HOLE, PAIR, DOWN, NOTE])
    assert badges(found) == {"loss": (3, Severity.ERROR), "topology": (1, Severity.ERROR),
                             "findings": (4, Severity.ERROR), "placement": (1, Severity.WARNING)}


def test_what_findings_name_and_the_overlay_the_loss_pane_opens_on():
    names = named(SNAP, [LOSS, HOLE, PAIR, DOWN, NOTE])
    assert names.nodes == {"node4": Severity.ERROR, "node3": Severity.ERROR, "node2": Severity.ERROR,
                           "node1": Severity.WARNING}
    assert names.networks == {"frontend": Severity.ERROR, "payments": Severity.ERROR, "backend": Severity.WARNING}
    assert names.services == {"api": Severity.WARNING}
    overlays = ["backend", "frontend", "payments"]
    assert worst_overlay(overlays, names) == "frontend"  # the worst, natural order among equals
    assert worst_overlay(overlays, named(SNAP, [PAIR])) == "backend"
    assert worst_overlay(overlays, named(SNAP, [DOWN, NOTE])) is None  # nothing on an overlay: the first


def test_a_healthy_cluster_has_no_problem_and_counts_its_notes():
    calm = ClusterSnapshot(0.0, (), "s", nodes=SNAP.nodes, services=(service("web"),), networks=SNAP.networks)
    result = headline(calm, [NOTE])
    assert result.problems == () and result.badges == {} and result.notes == 1


def test_the_headline_imports_no_textual():
    code = "import sys, overlaytui.analysis.headline; print('textual' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert run.stdout.strip() == "False"
