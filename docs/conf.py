"""Sphinx configuration of the documentation site.

Build it with ``tox -e docs`` (``bash tools/run-tests.sh -e docs``), which
installs the four distributions, builds with warnings as errors and runs the
documentation's tests. The pages are markdown (MyST); the API reference is
made by autodoc from the docstrings of the installed packages.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.ext import intersphinx
from sphinx.pycode import ModuleAnalyzer

HERE = Path(__file__).resolve().parent

project = "transports"
author = "The transports developers"
copyright = "the transports developers"
# The four distributions share one version: any of them tells it.
release = distribution_version("transports-abc")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Every cross-reference must resolve: a name that points nowhere is a build
# error, not a silently unlinked word.
nitpicky = True
nitpick_ignore_regex = [
    # Type variables of the generic classes (``_T_Transport``, ...) have no
    # page anywhere: they show as plain text in signatures and base lists.
    (r"py:(class|obj)", r"(.*\.)?_T_\w+"),
]
nitpick_ignore = [
    # Two "Raises:" sections end with "Others: as for connect_tcp()", which
    # napoleon reads as an exception named Others.
    ("py:exc", "Others"),
    # The Python documentation describes the members of these enums
    # (socket.AF_INET, socket.SOCK_STREAM, ...) but has no entry for the
    # enums themselves.
    ("py:class", "socket.AddressFamily"),
    ("py:class", "socket.SocketKind"),
]

# ------------------------------------------------------------------ MyST ---
myst_enable_extensions = ["colon_fence", "deflist"]
# Anchors for "#section-title" links between pages, as GitHub makes them.
myst_heading_anchors = 4

# --------------------------------------------------------------- autodoc ---
autodoc_member_order = "bysource"
autodoc_default_options: dict[str, bool | str] = {
    "members": True,
    "show-inheritance": True,
}
# Signatures show the parameters; their types go next to each description,
# where napoleon's "Parameters:" sections already describe them.
autodoc_typehints = "description"
autodoc_typehints_description_target = "all"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = False
autodoc_inherit_docstrings = True

# -------------------------------------------------------------- napoleon ---
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_param = True
napoleon_preprocess_types = False
napoleon_attr_annotations = True

# ---------------------------------------------------------- intersphinx ---
# docs.python.org cannot be reached where the docs are built (CI included),
# so the inventory comes from docs/_inventories/python.inv, which
# tools/make_python_inventory.py writes; the links still go to the Python
# documentation.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", str(HERE / "_inventories" / "python.inv")),
}
intersphinx_timeout = 5

# ------------------------------------------------------------------ HTML ---
html_theme = "furo"
html_title = f"transports {release}"
html_static_path = ["_static"]
html_css_files = ["transports.css"]
html_show_sourcelink = False

# ------------------------------------------------------ private plumbing ---
PUBLIC_PACKAGES = (
    "transports.abc",
    "transports.abc.testing",
    "transports.selector",
    "transports.socket",
    "transports.composite",
)

# Names that the Python documentation files under another module than the
# one the object reports at run time.
STDLIB_ALIASES = {
    "_ssl.SSLSession": "ssl.SSLSession",
    "_socket.socket": "socket.socket",
    "typing_extensions.Buffer": "collections.abc.Buffer",
}


def _exported_objects() -> dict[str, object]:
    """Every public name of the packages, by its public full name."""
    exported: dict[str, object] = {}
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            exported[f"{package}.{name}"] = getattr(module, name)
    return exported


EXPORTED = _exported_objects()
# A bare public name (``UnsupportedOperation`` in a docstring of another
# package) finds its one public object; a name two packages export (the
# re-exported ``TLSAttribute``) goes to the first, its defining package.
SHORT_NAMES: dict[str, str] = {}
for _full_name in EXPORTED:
    SHORT_NAMES.setdefault(_full_name.rpartition(".")[2], _full_name)
EXPORTED_CLASSES = {obj for obj in EXPORTED.values() if isinstance(obj, type)}


def _is_private_helper(cls: type) -> bool:
    """A class of ours that no public package exports (``SocketOwner``, ``_PipeEnd``)."""
    return cls.__module__.startswith("transports.") and cls not in EXPORTED_CLASSES


def _inheritance_stops() -> str:
    """The classes whose members a subclass's entry leaves to their own entry.

    Public classes derive from private helpers that define public methods
    (``close()`` of every socket transport lives in ``SocketOwner``). The
    helpers have no entry of their own, so their members are listed in each
    public subclass; members of public classes (ours or Python's) are not
    repeated, the base list links to them.
    """
    stops = {"object"}
    for cls in EXPORTED_CLASSES:
        stops.update(base.__name__ for base in cls.__mro__ if not _is_private_helper(base))
    return ",".join(sorted(stops))


autodoc_default_options["inherited-members"] = _inheritance_stops()


def _public_bases(bases: list[Any]) -> list[Any]:
    public: list[Any] = []
    for base in bases:
        if isinstance(base, type) and _is_private_helper(base):
            candidates = _public_bases(list(base.__bases__))
        else:
            candidates = [base]
        public.extend(candidate for candidate in candidates if candidate not in public)
    return public


def process_bases(app: Sphinx, name: str, obj: object, options: Any, bases: list[Any]) -> None:
    # A private helper has no entry to link to: the base list shows the
    # public classes it derives from instead, less those another listed
    # base already derives from.
    public = _public_bases(bases)
    classes = [base for base in public if isinstance(base, type)]
    bases[:] = [
        base
        for base in public
        if not (isinstance(base, type) and any(other is not base and issubclass(other, base) for other in classes))
    ]


def _public_name(target: str) -> str | None:
    """The public name of ``transports.<layer>._module.Name``, if it is exported."""
    parts = target.split(".")
    if len(parts) < 3 or parts[0] != "transports":
        return None
    for package in sorted(PUBLIC_PACKAGES, key=len, reverse=True):
        prefix = package.split(".")
        if parts[: len(prefix)] != prefix:
            continue
        rest = parts[len(prefix) :]
        # Skip the private modules between the package and the object.
        while rest and rest[0].startswith("_"):
            rest = rest[1:]
        if rest and f"{package}.{rest[0]}" in EXPORTED:
            return ".".join([package, *rest])
    return None


def resolve_aliases(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """Send references to private paths or to stdlib aliases to where they are documented.

    Type hints name the module that defines an object (``transports.socket._stream``,
    ``_ssl``), not the one that documents it.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    new_target = STDLIB_ALIASES.get(target) or _public_name(target)
    if new_target is None and "." not in target:
        new_target = SHORT_NAMES.get(target)
    if new_target is None or new_target == target:
        return None
    node["reftarget"] = new_target
    domain = env.get_domain("py")
    resolved = domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], new_target, node, contnode)
    if resolved is not None:
        return resolved
    return intersphinx.missing_reference(app, env, node, contnode)


def _attribute_comment(package: str, name: str) -> list[str] | None:
    """The ``#:`` comment of ``name`` in the private module that defines it."""
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__, prefix=package + "."):
        docs = ModuleAnalyzer.for_module(info.name).find_attr_docs()
        if ("", name) in docs:
            return list(docs["", name])
    return None


def process_docstring(app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]) -> None:
    # A constant re-exported by a package's __init__ has its "#:" comment in
    # the private module that defines it, where autodoc does not look (it
    # would show the docstring of int instead).
    if what != "data" or not name.startswith("transports."):
        return
    package, _, attribute = name.rpartition(".")
    comment = _attribute_comment(package, attribute)
    if comment is not None:
        lines[:] = comment


def _google_sections_but_not_in_attributes(app: Sphinx) -> None:
    """Leave attribute docstrings to autodoc.

    napoleon reads the first line of an attribute's docstring as
    ``type: description``, so the docstring "The cipher in use: (name,
    protocol version, secret bits)." made an attribute of type "The cipher
    in use". Our attributes take their types from their annotations;
    napoleon still parses the Google sections of every other docstring.
    """
    from sphinx.ext.napoleon import _process_docstring

    listeners = app.events.listeners["autodoc-process-docstring"]
    napoleon = [listener for listener in listeners if listener.handler is _process_docstring]
    if len(napoleon) != 1:
        raise RuntimeError("docs/conf.py: napoleon's docstring handler was not found, update this function")
    app.disconnect(napoleon[0].id)

    def process_google_sections(app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]) -> None:
        if what not in ("attribute", "data", "property"):
            _process_docstring(app, what, name, obj, options, lines)  # type: ignore[arg-type]

    app.connect("autodoc-process-docstring", process_google_sections, priority=napoleon[0].priority)


def hide_protocol_signatures(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, signature: str | None, return_annotation: str | None
) -> tuple[str, str | None] | None:
    # A Protocol is never instantiated: the "(*args, **kwargs)" that
    # typing.Protocol's constructor would show only misleads.
    if what == "class" and getattr(obj, "_is_protocol", False):
        return "", return_annotation
    return None


def drop_marker_values(app: Sphinx, doctree: nodes.document) -> None:
    """Drop the "= <object object>" that autodoc shows for typed attributes.

    A typed attribute (``SocketAttribute.family``) is a unique marker
    object; its type is what matters, and autodoc already shows it.
    """
    for annotation in list(doctree.findall(addnodes.desc_annotation)):
        if OPAQUE_VALUE.fullmatch(annotation.astext()):
            annotation.parent.remove(annotation)


OPAQUE_VALUE = re.compile(r"\s*=\s*<object object>\s*")


def setup(app: Sphinx) -> dict[str, Any]:
    _google_sections_but_not_in_attributes(app)
    app.connect("doctree-read", drop_marker_values)
    app.connect("autodoc-process-signature", hide_protocol_signatures)
    app.connect("autodoc-process-bases", process_bases)
    app.connect("autodoc-process-docstring", process_docstring)
    # Before intersphinx's own handler (priority 500), which would give up.
    app.connect("missing-reference", resolve_aliases, priority=400)
    return {"parallel_read_safe": True}
