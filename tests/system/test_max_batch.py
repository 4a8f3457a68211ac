"""`--batch-size max` through the runner on a real Ray, with the null
workers' device (tests/null_trials.py: batches up to FITS_UP_TO fit): each
probe a fresh worker process, each search kept in env.json as it ends, each
pair's trial at its batch with its search in the record, and a resume that
neither searches again nor runs a finished trial. (The real probes:
tests/worker/test_fit_probe.py; against a bare loop: bench/test_max_batch.py.)"""

from __future__ import annotations

import io
import json

import null_trials
from records import read_records
from rich.console import Console

from tlbench import results
from tlbench.driver import runner
from tlbench.driver.request import RunRequest
from tlbench.run_env import ENV_KEY

WORKERS = runner.Workers(
    frozen=None,
    trial=null_trials.quick_trial,
    prepare=null_trials.prepare_standin,
    predict=null_trials.predict_batch,
    probe=null_trials.probe_batch,
)


def test_each_pair_runs_at_the_largest_batch_its_probes_found_and_resume_keeps_the_searches(control, tmp_path):
    request = RunRequest("digits", ("mobilenet_v2_035_128",), ("transfer", "finetune"), quick=True, max_batch_size=True)
    out = io.StringIO()
    status = runner.start(request, runner.Settings(out=str(tmp_path / "runs")), Console(file=out, width=200), WORKERS)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert status == 0, out.getvalue()
    searches = json.loads((run_dir / results.ENV).read_text())[ENV_KEY]["batch_size_searches"]
    for mode, largest in null_trials.FITS_UP_TO.items():
        search = searches[f"mobilenet_v2_035_128/{mode}"]
        assert search["found"] == largest and search["predicted"] == null_trials.PREDICTED[mode]
        assert search["probes"][0]["batch_size"] == null_trials.PREDICTED[mode]  # it starts from the prediction
        assert search["stopped"].startswith(f"batch {largest} fits and ")
    probes = null_trials.probes()
    assert len({p["pid"] for p in probes}) == len(probes) == sum(len(s["probes"]) for s in searches.values())
    records = {r["mode"]: r for r in read_records(run_dir)}
    for mode, largest in null_trials.FITS_UP_TO.items():
        assert records[mode]["batch_size"] == records[mode]["max_batch_size_found"] == largest
        assert records[mode]["batch_size_search"] == searches[f"mobilenet_v2_035_128/{mode}"]
    said = out.getvalue()
    assert "mobilenet_v2_035_128/finetune: largest batch on 1.0 GiB: 9 (predicted 8;" in said
    assert "mobilenet_v2_035_128/transfer batch 50: does not fit: ResourceExhaustedError" in said
    report = (run_dir / results.REPORT_MD).read_text()
    assert "- `mobilenet_v2_035_128` finetune on 1.0 GiB: found 9, predicted 8, 1.12x the prediction" in report

    # A resume: no search, no probe, no trial again.
    out = io.StringIO()
    assert runner.resume(run_dir, runner.Settings(), Console(file=out, width=200), WORKERS) == 0
    assert "0 of 2 trials to run" in out.getvalue() and "searching" not in out.getvalue()
    assert len(null_trials.probes()) == len(probes) and len(read_records(run_dir)) == 2
