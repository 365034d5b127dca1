"""Run one spec against one store in this process and print each node's status as JSON (the
two-writer tests start several of these at once)."""

import json
import sys

from ssl_graph.api import Project

if __name__ == "__main__":
    spec, store = sys.argv[1], sys.argv[2]
    report = Project(spec, store).run(progress=False)
    print(json.dumps({n.name: [n.status, n.reasons] for n in report.nodes}), flush=True)
