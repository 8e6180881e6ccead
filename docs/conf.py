# Sphinx configuration of the saharank documentation site (built by tools/docs/build.py; see docs/README.md).
# The source tree (_docs/src) is assembled by the build script: executed notebooks, API pages, report pages.
import os, sys
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), '..')))

project = 'saharank'
author = 'saharank developers'
copyright = 'saharank developers (Apache-2.0)'
root_doc = 'nbs/index'                     # nbdev's convention: the home page is nbs/index.ipynb
extensions = ['myst_nb', 'sphinx.ext.autodoc', 'sphinx.ext.githubpages',   # githubpages: writes .nojekyll
              'sphinx-mathjax-offline']                                          # MathJax served from the site, no CDN
nb_execution_mode = 'off'                  # the notebooks arrive executed (tools/docs/build.py, cached)
nb_merge_streams = True
myst_enable_extensions = ['dollarmath', 'amsmath']
myst_heading_anchors = 3
exclude_patterns = ['figures/*/*.md', '**/.ipynb_checkpoints']   # report tables are inlined into figures/<run>.md
suppress_warnings = ['mystnb.unknown_mime_type', 'myst.header']
autodoc_default_options = {'member-order': 'bysource'}
autodoc_typehints = 'signature'
html_theme = 'sphinx_book_theme'
html_title = 'saharank'
html_theme_options = {'show_toc_level': 2, 'home_page_in_toc': True, 'use_download_button': True,
                      'show_navbar_depth': 1}
html_extra_path = ['extra']                # index.html at the site's root: a redirect to nbs/index.html
html_last_updated_fmt = None
html_context = {'default_mode': 'light'}   # the theme's mode switch starts from a defined mode (else a console error)


def _plain_docstring(app, what, name, obj, options, lines):
    "nbdev docstrings are plain text with markdown-style backticks, not reStructuredText: show them as written."
    if lines:
        text = list(lines)
        lines[:] = ['.. code-block:: text', '', *('   ' + l for l in text), '']


def setup(app):
    app.connect('autodoc-process-docstring', _plain_docstring)
