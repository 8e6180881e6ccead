"""`saharank.cluster` against a real single-node SLURM: Debian's slurm-wlm and munge, started for this module by
tools/slurm/local-slurm.sh in a temporary folder (localhost, no cgroups, no accounting) and stopped after it.

The module skips, saying why, only where SLURM is not installed (`bash .ci/slurm-setup` installs it) or cannot
start on this machine; with SAHARANK_REQUIRE_SLURM=1 in the environment those become failures."""
import os, shutil, socket, subprocess, sys, time
from pathlib import Path

import pytest

submitit = pytest.importorskip('submitit', reason='submitit is not installed (pip install "saharank[cluster]")')

from saharank.cluster import ShardFailed, submit_shards, wait_shards

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'tools' / 'slurm' / 'local-slurm.sh'
SBIN = os.pathsep.join([os.environ.get('PATH', ''), '/usr/sbin', '/sbin'])
CLI = 'import sys; from saharank.cli import main; sys.exit(main())'   # the CLI as `python -m saharank` runs it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def slurm(tmp_path_factory):
    """A running single-node SLURM; yields its folder. SLURM_CONF points the clients (and submitit) at it."""
    required = os.environ.get('SAHARANK_REQUIRE_SLURM') == '1'
    def unavailable(reason):
        pytest.fail(reason + ' (SAHARANK_REQUIRE_SLURM=1)') if required else pytest.skip(reason)
    missing = [b for b in ('munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'sinfo')
               if not shutil.which(b, path=SBIN)]
    if missing:
        unavailable(f"SLURM is not installed here ({', '.join(missing)} not found): bash .ci/slurm-setup installs "
                    "slurm-wlm and munge")
    d = tmp_path_factory.mktemp('slurm')
    if len(str(d / 'munge' / 'munge.socket')) > 100:             # a Unix socket path has at most 107 bytes
        d = Path(__import__('tempfile').mkdtemp(prefix='saharank-slurm-'))
    env = dict(os.environ, PATH=SBIN, LOCAL_SLURM_DIR=str(d), LOCAL_SLURM_CTLD_PORT=str(_free_port()),
               LOCAL_SLURM_SLURMD_PORT=str(_free_port()))
    r = subprocess.run(['bash', str(SCRIPT), 'start'], env=env, capture_output=True, text=True, timeout=180)
    try:
        if r.returncode:
            lines = (r.stderr or r.stdout).strip().splitlines() or ['(no message)']
            unavailable(f"the local SLURM could not start: {lines[-1]}")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv('SLURM_CONF', str(d / 'etc' / 'slurm.conf'))
            mp.setenv('PATH', SBIN)
            yield d
    finally:
        subprocess.run(['bash', str(SCRIPT), 'stop'], env=env, capture_output=True, text=True, timeout=120)


def test_job_array_runs_on_slurm(slurm, tmp_path):
    "A 3-element submitit job array runs on the local SLURM: each element sees its SLURM array index."
    ex = submitit.AutoExecutor(folder=tmp_path / 'jobs', cluster='slurm')
    ex.update_parameters(timeout_min=5, cpus_per_task=1, slurm_array_parallelism=3)
    script = 'echo "$SLURM_ARRAY_TASK_ID $0 $SLURM_CPUS_PER_TASK $SLURM_CLUSTER_NAME"'
    jobs = ex.map_array(submitit.helpers.CommandFunction(['bash', '-c', script]), ['a', 'b', 'c'])
    assert len({j.job_id.split('_')[0] for j in jobs}) == 1                 # one array, one sbatch
    assert wait_shards(jobs, poll_s=0.5, timeout_s=120) == [f'{i} {x} 1 saharank-local' for i, x in enumerate('abc')]


def test_failed_and_killed_shards_are_reported(slurm, tmp_path):
    "A shard saharank refuses fails with its stderr named; a job SLURM kills (no result file) is reported too."
    jobs = submit_shards(['--profile', 'nosuch', '--out', str(tmp_path / 'out'), '--quiet'], 2,
                         tmp_path / 'jobs', timeout_min=5)
    assert len(jobs) == 3                                                   # pre-training, then the array of 2 shards
    with pytest.raises(ShardFailed) as e:
        wait_shards(jobs, poll_s=0.5, timeout_s=180, grace_s=1)
    msg = str(e.value)
    # the pre-training fails (saharank's message in its stderr); SLURM then cancels the shards that waited for it
    assert msg.startswith('3 of 3 job(s) failed') and '- pre-training (job' in msg and 'exited with code 2' in msg, msg
    assert 'no profile [nosuch]' in msg and str(jobs[0].paths.stderr) in msg, msg
    assert ('- shard 0/2 (job' in msg and '- shard 1/2 (job' in msg
            and msg.count('SLURM state CANCELLED and no result') == 2), msg
    assert not (tmp_path / 'out').exists()
    ex = submitit.AutoExecutor(folder=tmp_path / 'sleep', cluster='slurm')
    ex.update_parameters(timeout_min=5, cpus_per_task=1)
    job = ex.submit(submitit.helpers.CommandFunction(['sleep', '120']))
    for _ in range(100):                                                   # until it runs, then kill it
        if subprocess.run(['squeue', '-h', '-j', job.job_id, '-o', '%T'], capture_output=True,
                          text=True).stdout.strip() == 'RUNNING': break
        time.sleep(0.2)
    subprocess.run(['scancel', job.job_id], check=True)
    t0 = time.monotonic()
    # killed before submitit's wrapper ran: no result file; killed while it ran: the wrapper writes a FailedJobError
    # (a race of a few ms, seen in CI) whose stderr names the cancellation. Either way the kill is reported.
    with pytest.raises(ShardFailed, match=r'SLURM state CANCELLED and no result|CANCELLED AT'):
        wait_shards([job], poll_s=0.5, timeout_s=60, grace_s=1)
    assert time.monotonic() - t0 < 30


# ---------------------------------------------------------------------------------------------------------------
# `saharank reproduce` sharded over a job array = one process


# the tiny profile of tests/test_pipeline.py, trained a little longer so that the predictions are not all empty
from test_pipeline import TINY as _TINY  # noqa: E402  (pytest puts tests/ on sys.path)
TINY = _TINY + "pretrain_epochs = 3\nfinetune_epochs = 2\nlearning_rate = 0.01\n"


# a tiny BHSD copy in its nnU-Net layout: `saharank reproduce --dataset bhsd` reads it from the command line, where the
# phantom anatomy of the library tests cannot be passed
from test_pipeline import write_bhsd  # noqa: E402


def _cli(args, **kw):
    "`saharank ARGS` in a fresh process with one CPU thread (the thread count the shards get)."
    r = subprocess.run([sys.executable, '-c', CLI, *args], env=dict(os.environ, OMP_NUM_THREADS='1'),
                       capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"saharank {' '.join(args)}: exit {r.returncode}\n{r.stderr[-3000:]}"
    return r


def test_sharded_reproduce_equals_one_process(slurm, tmp_path):
    settings = tmp_path / 'tiny.ini'
    settings.write_text(TINY)
    common = ['reproduce', '--profile', 'tiny', '--settings', str(settings), '--dataset', 'bhsd',
              '--root', str(write_bhsd(tmp_path / 'BHSD')), '--device', 'cpu', '--quiet', '--no-report', '--no-models']
    one, sharded = tmp_path / 'one', tmp_path / 'sharded'
    _cli(common + ['--out', str(one)], timeout=600)

    # the pre-training job, the 2 shards as one job array that waits for it, the assembling call after them
    jobs = submit_shards(common + ['--out', str(sharded)], 2, tmp_path / 'jobs', timeout_min=10,
                         cpus_per_task=1, threads=1,
                         assemble=True)
    assert len(jobs) == 4 and jobs[1].job_id.split('_')[0] == jobs[2].job_id.split('_')[0]
    res = wait_shards(jobs, poll_s=1, timeout_s=600)
    assert [r[-2:] for r in res] == [['--only', 'pretrain-multiview,pretrain-unet'],
                                     ['--shard', '0/2'], ['--shard', '1/2'],
                                     ['--out', str(sharded)]]
    runs = sorted((sharded / 'runs').glob('*.csv'))
    assert [p.name for p in runs] == sorted(p.name for p in (one / 'runs').glob('*.csv'))
    for name in ('per_patient.csv', 'table2.csv', 'table3.csv'):
        assert (sharded / name).read_bytes() == (one / name).read_bytes(), name

    # the assembling call of the recipe, here: trains nothing and writes the same tables
    before = {p: p.stat().st_mtime_ns for p in runs}
    for name in ('per_patient.csv', 'table2.csv', 'table3.csv'): (sharded / name).unlink()
    _cli(common + ['--out', str(sharded)], timeout=600)
    assert {p: p.stat().st_mtime_ns for p in runs} == before
    for name in ('per_patient.csv', 'table2.csv', 'table3.csv'):
        assert (sharded / name).read_bytes() == (one / name).read_bytes(), name
