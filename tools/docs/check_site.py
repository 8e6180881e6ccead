"""Open every page of the built site in headless Chromium and fail on any console error, image or internal link that
does not load.

    python tools/docs/check_site.py [--site _docs/site] [--shots _docs/shots] [--chromium /usr/bin/chromium]

The site is served over HTTP from a local server (as GitHub Pages would serve it); Chromium is Debian's
`chromium` package, driven by Playwright (`executable_path`: Playwright's own browser download is not used).
For every HTML page: console messages of type error, uncaught page errors, failed requests and HTTP errors
(>= 400) are errors; every `<img>` must have loaded (`complete` and `naturalWidth > 0`); every link to the
site itself (`<a href>`, fragment included) must name a file of the site and, with a fragment, an element
id of that page. Prints the counts (pages, images, console errors, broken links) and exits 1 on any error.
Screenshots (1280 x 800) of the home page and of the lecture go to --shots.
"""
from __future__ import annotations
import argparse, functools, http.server, re, shutil, sys, threading
from pathlib import Path
from urllib.parse import urlsplit, unquote

ROOT = Path(__file__).resolve().parents[2]
SHOTS = {'nbs/index.html': 'home.png', 'nbs/11_adapters_explained.html': 'lecture.png',
         'nbs/12_viewer.html': 'viewer_page.png'}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass


def serve(site: Path):
    "A local HTTP server of `site` in a thread; returns (server, base URL)."
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/"


@functools.lru_cache(maxsize=None)
def _ids(path: Path) -> frozenset:
    return frozenset(re.findall(r'\bid=["\']([^"\']+)["\']', path.read_text(errors='replace')))


def link_target(site: Path, base: str, href: str):
    "(file, fragment) of an internal link of the site, or None for an external one."
    u = urlsplit(href)
    if u.scheme not in ('http', 'https') or not href.startswith(base): return None
    rel = unquote(u.path[len(urlsplit(base).path):])
    p = site / rel
    if rel == '' or rel.endswith('/') or p.is_dir(): p = p / 'index.html'
    return p, unquote(u.fragment)


def find_chromium(given: str | None) -> str:
    for c in [given, shutil.which('chromium'), shutil.which('chromium-browser'), '/usr/bin/chromium']:
        if c and Path(c).exists(): return c
    raise SystemExit("check_site: no chromium found (Debian: apt-get install chromium)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--site', default=str(ROOT / '_docs' / 'site'))
    ap.add_argument('--shots', default=str(ROOT / '_docs' / 'shots'))
    ap.add_argument('--chromium', default=None)
    a = ap.parse_args(argv)
    site, shots = Path(a.site).resolve(), Path(a.shots)
    shots.mkdir(parents=True, exist_ok=True)
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html')
                   if not p.relative_to(site).parts[0].startswith(('_static', '_sources')))
    if not pages: raise SystemExit(f"check_site: no HTML pages in {site}")
    from playwright.sync_api import sync_playwright
    srv, base = serve(site)
    n_img, errors, broken, bad_img = 0, [], [], []
    checked_links = set()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(a.chromium), args=['--no-sandbox'])
        ctx = browser.new_context(viewport={'width': 1280, 'height': 800})
        for rel in pages:
            page = ctx.new_page()
            errs = []
            page.on('console',
                    lambda m, errs=errs: errs.append(f"console {m.type}: {m.text}") if m.type == 'error' else None)
            page.on('pageerror', lambda e, errs=errs: errs.append(f"page error: {e}"))
            page.on('requestfailed', lambda r, errs=errs: errs.append(f"request failed: {r.url} ({r.failure})"))
            page.on('response',
                    lambda r, errs=errs: errs.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
            page.goto(base + rel, wait_until='networkidle')
            page.evaluate("async () => { if (window.MathJax && MathJax.startup && MathJax.startup.promise) await "
                          "MathJax.startup.promise; return true; }")
            imgs = page.evaluate("() => Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete && "
                                 "i.naturalWidth > 0])")
            n_img += len(imgs)
            bad_img += [f"{rel}: image not loaded: {src}" for src, ok in imgs if not ok]
            for href in page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"):
                t = link_target(site, base, href)
                if t is None or (rel, href) in checked_links: continue
                checked_links.add((rel, href))
                path, frag = t
                if not path.is_file(): broken.append(f"{rel}: {href} (no file {path.relative_to(site)})")
                elif frag and path.suffix == '.html' and frag not in _ids(path):
                    broken.append(f"{rel}: {href} (no id '{frag}')")
            if rel in SHOTS: page.screenshot(path=str(shots / SHOTS[rel]))
            errors += [f"{rel}: {e}" for e in errs]
            page.close()
        browser.close()
    srv.shutdown()
    for line in errors + bad_img + broken: print('  ' + line)
    print(f"check_site: {len(pages)} pages, {n_img} images ({len(bad_img)} not loaded), {len(errors)} console errors, "
          f"{len(checked_links)} internal links checked, {len(broken)} broken links; screenshots in {shots}")
    if errors or bad_img or broken: sys.exit(1)


if __name__ == '__main__':
    main()
