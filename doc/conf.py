"""Sphinx configuration for the skssl documentation.

Build with ``make docs`` (warnings are errors). Nothing here needs the network:
there is no intersphinx mapping, so references to scikit-learn and NumPy
objects render as plain code instead of links.
"""

import os
import sys
import warnings
from datetime import date

# Document the checkout being built, not whichever skssl is installed.
sys.path.insert(0, os.path.abspath(".."))

import skssl

project = "skssl"
author = "The skssl developers"
copyright = f"{date.today().year}, {author}"
release = skssl.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

templates_path = ["_templates"]
# Pages are reStructuredText; myst_parser only renders the benchmark results
# (markdown written by benchmarks/*.py) that pages include, so no .md file is
# built as a page of its own.
source_suffix = {".rst": "restructuredtext"}
# A results file's "## Section" headings nest under the page section that
# includes it (its "# Title" line is skipped), which MyST, reading the file as
# a document of its own, reports as starting at H2.
suppress_warnings = ["myst.header"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.md5"]
root_doc = "index"
default_role = "literal"

# API pages: one page per object, generated from the autosummary tables.
autosummary_generate = True
autodoc_typehints = "none"
autodoc_default_options = {"members": True, "inherited-members": False}

# numpydoc renders Parameters/Attributes; the class template lists the
# methods, so numpydoc must not add a second members table.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# The theme of scikit-learn, NumPy and pandas: a user of those finds the same
# navigation here. It puts every table in a horizontally scrolling box, so the
# wide benchmark tables are never cut off.
html_theme = "pydata_sphinx_theme"
html_title = f"skssl {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"index": [], "install": [], "benchmarks": []}
html_static_path = []

sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "plot_gallery": "True",
    # The examples are small; a slow one is a bug, not a reason to wait.
    "abort_on_example_error": True,
    "matplotlib_animations": False,
    "min_reported_time": 1,
}

# Headless builds: never try to open a window.
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings(
    "ignore",
    category=UserWarning,
    message="Matplotlib is currently using agg, which is a non-GUI backend",
)


def _skip_metadata_requests(app, what, name, obj, skip, options):
    # scikit-learn generates set_*_request methods on every estimator; their
    # docstrings point into scikit-learn's own docs, and they are documented
    # there.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_requests)
