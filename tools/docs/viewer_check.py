"""The mask viewer in a real browser: live widgets (Voila + ipykernel) in headless Chromium at 1280 x 800.

    python tools/docs/viewer_check.py [--shots _docs/shots] [--update]

Runs a small notebook that shows `saharank.viewer.MaskViewer` on a phantom patient (no real CT, nothing
downloaded) under Voila, opens it in Debian's chromium through Playwright, and checks that
- the image is shown at its own pixel size (the PNG's `naturalWidth` x `naturalHeight`, i.e. `size_px`
  across: not stretched to the page's width),
- the image and every control (patient, slice, window, overlays, opacity, status line) lie inside the
  1280 x 800 window, and no control overlaps the image.
Prints the geometry, writes the screenshot to --shots/viewer.png (and to figures/docs/viewer.png with
--update: the picture the docs show) and exits 1 if a check fails.
"""
from __future__ import annotations
import argparse, os, shutil, socket, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VIEW_W, VIEW_H, SIZE_PX = 1280, 800, 384
DEMO = (f"""\
import numpy as np
from scipy import ndimage as ndi
from IPython.display import display
from saharank.cohort import phantom_anatomy, make_patient, grid_for
from saharank.viewer import MaskViewer
anat = phantom_anatomy()
grid = grid_for(anat, 64)
hu, mask = make_patient(anat, grid, np.random.default_rng(3), lesions=('IPH',))
pred = ndi.binary_erosion(mask, np.ones((3, 3, 1), bool)).astype(np.uint8)
viewer = MaskViewer({{'phantom-IPH': (hu, mask, grid.affine)}}, predictions={{'phantom-IPH': pred}}, """
        f"""opacity=0.5, size_px={SIZE_PX})
display(viewer.widget)
""")
CONTROLS = ('.widget-dropdown', '.widget-slider', '.widget-toggle-buttons', '.widget-checkbox', '.widget-html')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def write_demo(folder: Path) -> Path:
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(DEMO)])
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / 'viewer_demo.ipynb'
    nbformat.write(nb, p)
    return p


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--shots', default=str(ROOT / '_docs' / 'shots'))
    ap.add_argument('--update', action='store_true', help='also write figures/docs/viewer.png')
    ap.add_argument('--chromium', default=None)
    ap.add_argument('--timeout', type=float, default=180, help='seconds to wait for the widgets')
    a = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from check_site import find_chromium
    shots = Path(a.shots)
    shots.mkdir(parents=True, exist_ok=True)
    work = ROOT / '_docs' / 'viewer'
    nb = write_demo(work)
    port = free_port()
    log = open(work / 'voila.log', 'w')
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    voila = subprocess.Popen([sys.executable, '-m', 'voila', nb.name, '--no-browser', f'--port={port}',
                              '--Voila.ip=127.0.0.1',
                              '--show_tracebacks=True'], cwd=work, stdout=log, stderr=subprocess.STDOUT, env=env)
    failures, errs = [], []
    try:
        from playwright.sync_api import sync_playwright
        t0 = time.time()
        while True:
            try:
                socket.create_connection(('127.0.0.1', port), timeout=1).close()
                break
            except OSError:
                if voila.poll() is not None or time.time() - t0 > 60:
                    raise SystemExit(f"viewer_check: voila did not start (see {work / 'voila.log'})")
                time.sleep(0.5)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=find_chromium(a.chromium), args=['--no-sandbox'])
            page = browser.new_page(viewport={'width': VIEW_W, 'height': VIEW_H})
            page.on('pageerror', lambda e: errs.append(f"page error: {e}"))
            page.on('console', lambda m: errs.append(f"console error: {m.text}") if m.type == 'error' else None)
            page.goto(f"http://127.0.0.1:{port}/", timeout=a.timeout * 1000)
            page.wait_for_selector('img.widget-image', state='visible', timeout=a.timeout * 1000)
            page.wait_for_function("() => { const i = document.querySelector('img.widget-image'); return i.complete "
                                   "&& i.naturalWidth > 0; }",
                                   timeout=a.timeout * 1000)
            page.wait_for_timeout(500)
            img = page.evaluate("""() => { const i = document.querySelector('img.widget-image'), """
                                """r = i.getBoundingClientRect();
                                   return {x: r.x, y: r.y, w: r.width, h: r.height, """
                                """nw: i.naturalWidth, nh: i.naturalHeight}; }""")
            boxes = page.evaluate("""(sels) => sels.flatMap(s => Array.from(document.querySelectorAll(s)).map(e => {
                                        const r = e.getBoundingClientRect(); """
                                  """return {sel: s, x: r.x, y: r.y, w: r.width, h: r.height}; }))""",
                                  list(CONTROLS))
            page.screenshot(path=str(shots / 'viewer.png'))
            browser.close()
    finally:
        voila.terminate()
        try: voila.wait(10)
        except subprocess.TimeoutExpired: voila.kill()
        log.close()
    print(f"viewer_check: image at ({img['x']:.0f}, {img['y']:.0f}) shown {img['w']:.0f} x {img['h']:.0f} px, "
          f"PNG {img['nw']} x {img['nh']} px; {len(boxes)} controls")
    if abs(img['w'] - img['nw']) > 1 or abs(img['h'] - img['nh']) > 1:
        failures.append(f"image shown at {img['w']:.0f} x {img['h']:.0f}, not at its size {img['nw']} x {img['nh']}")
    if not SIZE_PX * 0.9 <= max(img['nw'], img['nh']) <= SIZE_PX * 1.1:
        failures.append(f"image {img['nw']} x {img['nh']} px is not about size_px = {SIZE_PX} across")
    inside = (lambda b: b['x'] >= 0 and b['y'] >= 0 and b['x'] + b['w'] <= VIEW_W + 0.5
              and b['y'] + b['h'] <= VIEW_H + 0.5)
    if not inside(img): failures.append(f"image outside the {VIEW_W} x {VIEW_H} window: {img}")
    kinds = {b['sel'] for b in boxes}
    for s in CONTROLS:
        if s not in kinds: failures.append(f"no control {s} on the page")
    for b in boxes:
        if not inside(b): failures.append(f"control {b['sel']} outside the {VIEW_W} x {VIEW_H} window: {b}")
        overlap = (min(b['x'] + b['w'], img['x'] + img['w']) - max(b['x'], img['x']) > 1 and
                   min(b['y'] + b['h'], img['y'] + img['h']) - max(b['y'], img['y']) > 1)
        if overlap: failures.append(f"control {b['sel']} overlaps the image: {b}")
    for e in errs: print('  ' + e)
    if a.update:
        dest = ROOT / 'figures' / 'docs' / 'viewer.png'
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shots / 'viewer.png', dest)
        print(f"  wrote {dest.relative_to(ROOT)}")
    for f in failures: print('  FAIL ' + f)
    print(f"viewer_check: {'ok' if not failures else f'{len(failures)} failure(s)'}; screenshot "
          f"{shots / 'viewer.png'}; {len(errs)} console errors")
    if failures: sys.exit(1)


if __name__ == '__main__':
    main()
