"""Where the time of `saharank reproduce --profile smoke` goes: the wall time of each stage against a reference run
recorded in the repository for the same machine class, and a profile of one fine-tuning run.

    python bench/smoke_time.py                      # a fresh smoke run in runs/smoke-time, then the profile of one run
    python bench/smoke_time.py --reuse              # the profile and the table only, from the run already in --out
    python bench/smoke_time.py --record NAME        # also store this measurement as reference NAME for this
                                                      machine class
    python bench/smoke_time.py --profile-only RUN   # only the profile of fine-tuning run RUN (e.g. LoRA-C64-fold1)

Prints, per stage (provenance.json `wall_time_s` and calls.json's `stages`, with the wall time of the whole command,
imports included), the seconds, the reference's seconds and the speed-up (reference / now); then the profile of one
fine-tuning run in a fresh process (imports; training steps split into augmentation, forward and loss, backward,
Adam; prediction, the hyperdense gate, HD95/ASSD, reading and writing NIfTI; the rest), against the reference's.
Timings are measured, never asserted. Run it on a quiet machine: another job on the same cores doubles everything.
Reference runs: bench/smoke_time_reference.json, one entry per machine class (architecture, AVX-512 or AVX2, cores).
"""
from __future__ import annotations
import argparse, json, os, platform, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / 'bench' / 'smoke_time_reference.json'
STAGES = ('cohorts_s', 'pretrain_s', 'finetune_s', 'deploy_s', 'bench_s', 'robustness_s', 'generalization_s',
          'results_s', 'report_s')


def machine_class() -> str:
    "'x86_64 AVX-512 2 cores' (architecture, widest vector extension, usable cores): timings compare within a class."
    flags = ''
    try: flags = next(l for l in Path('/proc/cpuinfo').read_text().splitlines() if l.startswith('flags'))
    except (OSError, StopIteration): pass
    isa = 'AVX-512' if ' avx512f' in flags else 'AVX2' if ' avx2' in flags else 'other'
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    return f"{platform.machine()} {isa} {cores} cores"


def cpu_model() -> str:
    try:
        return next(l.split(':', 1)[1].strip() for l in Path('/proc/cpuinfo').read_text().splitlines()
                    if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor() or 'unknown'


def run_smoke(out: Path, jobs: int | None) -> float:
    """A fresh `saharank reproduce --profile smoke` into `out` in a subprocess; returns its wall seconds (imports
    included)."""
    if out.exists(): shutil.rmtree(out)
    cmd = [sys.executable, '-m', 'saharank', 'reproduce', '--profile', 'smoke', '--out', str(out), '--quiet']
    if jobs: cmd += ['--jobs', str(jobs)]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode: sys.exit(f"smoke run failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    (out / 'smoke_time.log').write_text(r.stdout)
    return wall


def stage_seconds(out: Path) -> dict:
    """Each stage's seconds of the run in `out`: provenance.json's wall_time_s, completed by the last call's stages
    (the report)."""
    prov = json.loads((out / 'provenance.json').read_text())['wall_time_s']
    calls = json.loads((out / 'calls.json').read_text())
    stages = {**prov, **calls[-1].get('stages', {})}
    return {k: float(v) for k, v in stages.items() if k.endswith('_s')} | {'jobs': stages.get('jobs', 1)}


# --- the profile of one fine-tuning run, in a fresh process --------------------------------------------------------

PARTS = {  # label: (module, attribute) wrapped by a timer; nested parts are reported inside their parent
    'load the training slices': ('GRID', 'load_slices'),
    'training (train_model)': ('GRID', 'train_model'),
    '  augmentation (flip, elastic, intensity)': ('saharank.training', 'augment_batch'),
    '  forward and loss': ('saharank.training', 'mixed_loss'),
    '  backward': ('torch.autograd', 'backward'),
    '  Adam': ('torch.optim.Adam', 'step'),
    'save the trained weights': ('GRID', 'save_trainable'),
    'evaluation (evaluate_patients)': ('GRID', 'evaluate_patients'),
    '  read NIfTI (load_case)': ('saharank.evaluation', 'load_case'),
    '  prediction (predict_volume)': ('saharank.evaluation', 'predict_volume'),
    '  post-processing': ('saharank.evaluation', 'blood_mask'),
    '  write the predicted masks (save_nifti)': ('saharank.data', 'save_nifti'),
    '  HD95 and ASSD (surface_distances)': ('saharank.evaluation', 'surface_distances'),
}


def profile_run(out: Path, run_id: str) -> dict:
    """Seconds of each part of fine-tuning run `run_id` of the smoke run in `out`, trained again into a temporary
    folder."""
    t0 = time.perf_counter()
    import importlib
    import torch
    import saharank.training, saharank.evaluation, saharank.data   # noqa: E401,F401
    try:
        grid = importlib.import_module('saharank.grid')
        tasks_of, run_one = grid.finetune_tasks, grid.finetune
    except ImportError:                                  # before saharank.grid (the reference run's code)
        grid = importlib.import_module('saharank.experiment')
        tasks_of, run_one = grid._finetune_tasks, grid._finetune
    from saharank.settings import Settings
    from saharank.data import read_manifest
    imports = time.perf_counter() - t0
    seconds = {k: 0.0 for k in PARTS}
    def wrap(label, owner, name):
        f = getattr(owner, name)
        def timed(*a, **k):
            t = time.perf_counter()
            try: return f(*a, **k)
            finally: seconds[label] += time.perf_counter() - t
        setattr(owner, name, timed)
    for label, (mod, name) in PARTS.items():
        if mod == 'GRID': owner = grid
        elif mod == 'torch.optim.Adam': owner = torch.optim.Adam
        else: owner = importlib.import_module(mod)
        if hasattr(owner, name): wrap(label, owner, name)
    prov = json.loads((out / 'provenance.json').read_text())
    cfg = Settings(**prov['settings'])  # the run's own settings (its profile, from any settings file)
    threads = prov.get('threads')
    if threads: torch.set_num_threads(int(threads))         # as each run of the smoke run computed
    sah = read_manifest(out / 'cohorts' / 'sah')
    task = next((t for t in tasks_of(cfg, out, sah, torch.device('cpu'))
                 if t.get('run_id', f"{t['name']}-{t['fold']}") == run_id), None)
    if task is None:
        sys.exit(f"{run_id}: not a fine-tuning run of the grid in {out} (see saharank reproduce --list-runs)")
    with tempfile.TemporaryDirectory() as d:
        task = dict(task, done=f'{d}/run.csv', state=f'{d}/state.safetensors', weights=f'{d}/run.safetensors',
                    out=str(Path(d) / 'out'))
        shutil.copytree(out / 'cohorts', Path(d) / 'out' / 'cohorts')       # predictions are written under the copy
        t = time.perf_counter()
        run_one(task)
        total = time.perf_counter() - t
    inner = sum(v for k, v in seconds.items() if not k.startswith('  '))
    return dict(run=run_id, threads=torch.get_num_threads(), imports_s=round(imports, 2), run_s=round(total, 2),
                parts_s={k: round(v, 2) for k, v in seconds.items()}, other_s=round(total - inner, 2))


# --- the report ---------------------------------------------------------------------------------------------------

def ratio(ref, now) -> str:
    return f"{ref / now:.2f}x" if ref and now else ''


def show(now: dict, ref: dict | None, ref_name: str | None):
    head = f"reference: {ref_name}" if ref else "no reference for this machine class"
    print(f"\nsmoke profile, {now['machine']} ({now['cpu']}), torch {now['torch']}, jobs "
          f"{now['stages'].get('jobs', 1)}; {head}")
    print(f"{'stage':<34}{'now s':>9}{'ref s':>9}{'speed-up':>10}")
    rs = (ref or {}).get('stages', {})
    for k in STAGES + ('total_s',):
        if k in now['stages'] or k in rs:
            print(f"{k[:-2]:<34}{now['stages'].get(k, float('nan')):>9.1f}{rs.get(k, float('nan')):>9.1f}"
                  f"{ratio(rs.get(k), now['stages'].get(k)):>10}")
    tot = lambda st: st.get('total_s', 0) + st.get('report_s', 0) if 'total_s' in st else None
    print(f"{'total with the report':<34}{tot(now['stages']):>9.1f}{(tot(rs) or float('nan')):>9.1f}"
          f"{ratio(tot(rs), tot(now['stages'])):>10}")
    if 'wall_s' in now:
        print(f"{'the command, imports included':<34}{now['wall_s']:>9.1f}"
              f"{(ref or {}).get('wall_s', float('nan')):>9.1f}"
              f"{ratio((ref or {}).get('wall_s'), now['wall_s']):>10}")
    p, rp = now.get('profile'), (ref or {}).get('profile') or {}
    if p:
        print(f"\none fine-tuning run, {p['run']}, in a fresh process, {p.get('threads', '?')} thread(s) (seconds)")
        print(f"{'part':<44}{'now':>8}{'ref':>8}{'speed-up':>10}")
        rows = ([('imports', p['imports_s'], rp.get('imports_s'))]
                + [(k, v, rp.get('parts_s', {}).get(k)) for k, v in p['parts_s'].items()])
        rows += [('the rest of the run (model, replicates, ...)', p['other_s'], rp.get('other_s')),
                 ('the whole run', p['run_s'], rp.get('run_s'))]
        for k, v, r in rows:
            print(f"{k:<44}{v:>8.2f}{(r if r is not None else float('nan')):>8.2f}{ratio(r, v):>10}")
        if rp and rp.get('threads') != p.get('threads'):
            print(f"(the reference's run computed with {rp.get('threads')} thread(s), this one with "
                  f"{p.get('threads')}: with one thread per run, "
                  f"{now['stages'].get('jobs', 1)} runs train at once)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default='runs/smoke-time', help='the smoke run folder (default runs/smoke-time)')
    ap.add_argument('--reuse', action='store_true', help='do not run the smoke profile: read the run in --out')
    ap.add_argument('--jobs', type=int, default=None, help='--jobs of the smoke run (default: saharank\'s)')
    ap.add_argument('--run', default='LoRA-C64-fold1', help='the fine-tuning run to profile (default LoRA-C64-fold1)')
    ap.add_argument('--profile-only', metavar='RUN',
                    help='only print the profile of this run (of the run in --out), as JSON')
    ap.add_argument('--record', metavar='NAME',
                    help='store this measurement in bench/smoke_time_reference.json as NAME')
    ap.add_argument('--reference', metavar='NAME',
                    help='the reference to compare with (default: the first of this machine class)')
    a = ap.parse_args(argv)
    out = Path(a.out)
    if a.profile_only:
        print(json.dumps(profile_run(out, a.profile_only)))
        return
    import torch
    now = dict(machine=machine_class(), cpu=cpu_model(), torch=torch.__version__, date=time.strftime('%Y-%m-%d'))
    if not a.reuse: now['wall_s'] = round(run_smoke(out, a.jobs), 1)
    now['stages'] = stage_seconds(out)
    r = subprocess.run([sys.executable, __file__, '--out', str(out), '--profile-only', a.run],
                       capture_output=True, text=True)
    if r.returncode: sys.exit(f"profile of {a.run} failed:\n{r.stderr[-3000:]}")
    now['profile'] = json.loads(r.stdout.strip().splitlines()[-1])
    refs = json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {}
    mine = refs.get(now['machine'], {})
    name = a.reference or next(iter(mine), None)
    show(now, mine.get(name), name)
    if a.record:
        refs.setdefault(now['machine'], {})[a.record] = now
        REFERENCE.write_text(json.dumps(refs, indent=1) + '\n')
        print(f"\nrecorded as {a.record!r} for {now['machine']} in {REFERENCE.relative_to(ROOT)}")


if __name__ == '__main__':
    main()
