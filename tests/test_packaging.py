"""What `pip install saharank` ships: the settings and the papermill notebooks of `saharank report` travel inside the
package, and the installed package finds its own copy (not a source checkout's)."""
import subprocess, sys, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_settings_and_pipeline_notebooks(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                        str(tmp_path / "whl"), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    whl = next((tmp_path / "whl").glob("saharank-*.whl"))
    names = zipfile.ZipFile(whl).namelist()
    for n in ("saharank/settings.ini", "saharank/pipeline/01_tables.ipynb", "saharank/pipeline/02_figures.ipynb",
              "saharank/pipeline/03_findings.ipynb", "saharank/__main__.py",
              "saharank/reference/paper_table2_finetuning.csv",
              # saharank.baselines' vendored LiteMedSAM network and the licences it comes under
              "saharank/_vendor/litemedsam/tiny_vit.py", "saharank/_vendor/litemedsam/LICENSE-Apache-2.0",
              "saharank/_vendor/litemedsam/LICENSE-MIT-TinyViT"):
        assert n in names, n
    site = tmp_path / "site"
    zipfile.ZipFile(whl).extractall(site)
    code = ("import saharank.report as e, saharank.settings as s, saharank.baselines as b; b.build_litemedsam(); "
            "print(e.pipeline_dir()); print(s.SETTINGS_FILE.exists())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert r.returncode == 0, r.stderr
    where, settings = r.stdout.split()
    assert Path(where) == site / "saharank" / "pipeline" and settings == "True"
    assert ((site / "saharank" / "pipeline" / "01_tables.ipynb").read_bytes()
            == (ROOT / "pipeline" / "01_tables.ipynb").read_bytes())


def test_pip_user_installs_the_built_wheel_then_the_report_extra_and_runs_saharank_report(tmp_path, tmp_path_factory):
    """As a pip user would: the built wheel in a fresh venv without extras, `saharank report RUN` refuses with one
    line naming `saharank[report]`; with `[report]` installed it regenerates the tables and figures of a tiny run."""
    import os, venv
    from saharank.cohort import phantom_anatomy
    from saharank.experiment import reproduce
    from test_pipeline import TINY  # noqa: E402  (pytest puts tests/ on sys.path)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                        str(tmp_path / "whl"), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "saharank.pipeline" not in r.stderr, r.stderr  # declared as a package: no setuptools warning about it
    whl = next((tmp_path / "whl").glob("saharank-*.whl"))
    # a tiny finished run, made with the development install (the phantom head: no download)
    (tmp_path / "tiny.ini").write_text(TINY)
    run_dir = tmp_path / "run"
    reproduce("tiny", run_dir, settings=tmp_path / "tiny.ini", device="cpu", progress=False, verbose=False,
              anatomy=phantom_anatomy(), report=False, deploy=False)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py, cli = env_dir / "bin" / "python", env_dir / "bin" / "saharank"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    def pip(*args):
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", *args], capture_output=True,
                           text=True, timeout=900, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
    pip("torch==2.13.0")                                 # CPU build, pinned: see .ci/setup
    pip(str(whl))
    out = tmp_path / "report"
    r = subprocess.run([str(cli), "report", str(run_dir), "--out", str(out)], capture_output=True, text=True,
                       timeout=600, env=env, cwd=tmp_path)
    assert r.returncode == 2 and "saharank[report]" in r.stdout + r.stderr, (r.returncode, r.stdout, r.stderr)
    assert not out.exists() or not any(out.iterdir())
    pip(f"{whl}[report]")
    r = subprocess.run([str(cli), "report", str(run_dir), "--out", str(out)], capture_output=True, text=True,
                       timeout=600, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("table2_side_by_side.md", "table3_side_by_side.md", "fig3_volumes.png", "findings.md",
                 "report_provenance.json"):
        assert (out / name).stat().st_size > 0, name
    where = subprocess.run([str(py), "-c", "import saharank; print(saharank.__file__)"], capture_output=True,
                           text=True, env=env, cwd=tmp_path).stdout
    assert str(env_dir) in where, where                   # the report ran from the installed wheel, not the checkout
