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
]

templates_path = ["_templates"]
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

html_theme = "alabaster"
html_title = f"skssl {release}"
html_theme_options = {
    "description": "Semi-supervised learning estimators for scikit-learn",
    "fixed_sidebar": True,
}
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
