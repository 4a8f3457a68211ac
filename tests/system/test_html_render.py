"""report.html as a reader's browser shows it: Debian's Chromium, headless,
in a process of its own (skipped where it is not installed; .ci/run installs
it)."""

import io

import pytest
from reporting import write_report


def _written_run(tmp_path, records):
    """A run folder as tests/unit/test_report.py writes it."""
    import json

    run = tmp_path / "20261128T000000Z-h-cpu"
    run.mkdir()
    (run / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run / "env.json").write_text(json.dumps({"versions": {"tlbench": "0.0.1"}, "host": "h"}))
    return run


def _wait_for_chromiums_install() -> None:
    """.ci/run installs Chromium in the background, holding a lock on the file
    TLBENCH_CHROMIUM_INSTALL_LOCK names until the install ends: wait for it."""
    import fcntl
    import os

    lock = os.environ.get("TLBENCH_CHROMIUM_INSTALL_LOCK")
    if lock and os.path.exists(lock):
        with open(lock) as held:
            fcntl.flock(held, fcntl.LOCK_SH)


def test_the_html_report_renders_its_tables_and_plots_in_headless_chromium(tmp_path):
    """Chromium opens a copy of report.html, in a desktop-sized window, with a
    script that tells what it rendered: tables with rows, and per image its
    decoded size and the size it takes on the page. Every plot written is
    there, decoded whole, shown large enough to read and undistorted."""
    import base64
    import html
    import json
    import re
    import shutil
    import subprocess

    from PIL import Image
    from records import DECIDE_RECORDS

    from tlbench.results import read_run

    _wait_for_chromiums_install()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    run = read_run(_written_run(tmp_path, DECIDE_RECORDS))
    plots = {name: path.read_bytes() for name, path in write_report(run).items() if name.endswith(".png")}
    assert set(plots) == {"memory.png", "throughput.png", "accuracy_vs_throughput.png", "ladder.png"}
    sizes = {}
    for name, png in plots.items():
        with Image.open(io.BytesIO(png)) as image:
            sizes[name] = image.size
        width, height = sizes[name]
        assert 800 <= width <= 2000 and 350 <= height <= 1000 and 1.2 <= width / height <= 4, (name, sizes[name])
    report_html = (run.run_dir / "report.html").read_text()
    embedded = [base64.b64decode(data) for data in re.findall(r'<img src="data:image/png;base64,([^"]+)"', report_html)]
    by_bytes = {png: name for name, png in plots.items()}
    in_page = [by_bytes.get(png, "a PNG that is no plot") for png in embedded]  # the page's order
    assert sorted(in_page) == sorted(plots)  # each plot once, nothing else
    probe = (
        "<script>window.addEventListener('load', () => {"
        " const images = [...document.images].map(i => ({complete: i.complete, alt: i.alt,"
        "  natural: [i.naturalWidth, i.naturalHeight],"
        "  shown: [i.getBoundingClientRect().width, i.getBoundingClientRect().height],"
        "  caption: i.closest('figure')?.querySelector('figcaption')?.textContent ?? ''}));"
        " const tables = [...document.querySelectorAll('table')].filter(t => t.rows.length > 1).length;"
        " document.body.setAttribute('data-rendered', JSON.stringify({images, tables})); });</script>"
    )
    page = tmp_path / "probe.html"
    page.write_text(report_html.replace("</body>", probe + "</body>"))
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--window-size=1400,1000",  # a reader's desktop browser
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = re.search(r'data-rendered="([^"]*)"', done.stdout)
    assert found, done.stderr[-500:]
    rendered = json.loads(html.unescape(found.group(1)))
    assert rendered["tables"] == 3  # the ladder, trials and accuracy over seeds (one batch size: no memory lines)
    assert len(rendered["images"]) == len(in_page)
    for name, image in zip(in_page, rendered["images"]):
        assert image["complete"] and image["natural"] == list(sizes[name]), (name, image)  # decoded whole
        assert image["alt"] and image["caption"] == image["alt"], (name, image)
        (natural_width, natural_height), (width, height) = sizes[name], image["shown"]
        assert 700 <= width <= 1400, (name, image)  # most of the window, never wider
        assert width / height == pytest.approx(natural_width / natural_height, rel=0.02), (name, image)  # undistorted
