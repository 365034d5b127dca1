"""The HTML report as a person sees it: rendered by headless Chromium (Debian's `chromium`),
every image loads, the page logs no errors; the screenshot is kept as a test artifact."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from ssl_graph.api import Project
from ssl_graph.report_variants import write_variant_report

from ..conftest import ROOT, SPEC_TEMPLATE, make_corpus

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "tests" / "artifacts"
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no chromium installed (apt-get install "
                                "chromium; .ci/run installs it where it can)")


def _chromium(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([BROWSER, "--headless=new", "--no-sandbox", "--disable-gpu",
                           "--disable-dev-shm-usage", "--no-first-run", *args],
                          capture_output=True, text=True, timeout=timeout)


CHECKER = """<html><body><script>
const srcs = %s; const out = {};
let left = srcs.length;
for (const s of srcs) {
  const im = new Image();
  im.onload = () => { out[s] = im.naturalWidth; if (--left === 0) done(); };
  im.onerror = () => { out[s] = -1; if (--left === 0) done(); };
  im.src = s;
}
function done() { document.body.setAttribute('data-result', JSON.stringify(out)); }
</script></body></html>"""


def test_variant_report_renders_with_every_image_and_no_errors(tmp_path):
    make_corpus(tmp_path, 8)
    projects = []
    for k in (8, 16):
        spec = tmp_path / f"v{k}.py"
        spec.write_text(SPEC_TEMPLATE.format(k=k))
        p = Project(spec, str(tmp_path / "store"))
        p.run()
        projects.append(p)
    out = tmp_path / "report"
    write_variant_report(projects, out)
    page = out / "report.html"
    srcs = re.findall(r"<img src='([^']+)'", page.read_text())
    assert len(srcs) >= 3  # pipeline graph, heat map, PNMI vs k
    (out / "check.html").write_text(CHECKER % json.dumps(srcs))
    res = _chromium("--virtual-time-budget=10000", "--dump-dom", (out / "check.html").as_uri())
    found = re.search(r"data-result=\"([^\"]+)\"", res.stdout)
    assert found, res.stdout[-500:] + res.stderr[-500:]
    widths = json.loads(found.group(1).replace("&quot;", '"'))
    assert set(widths) == set(srcs) and all(w > 100 for w in widths.values()), widths
    res = _chromium("--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
                    "--dump-dom", page.as_uri())
    assert "<table>" in res.stdout
    errors = [ln for ln in res.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not errors, errors
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    res = _chromium(f"--screenshot={shot}", "--window-size=1280,1800", "--hide-scrollbars",
                    page.as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000, res.stderr[-500:]
