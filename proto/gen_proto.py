#!/usr/bin/env python3
"""Regenerate the Mesos v1 .proto files from the shared reference.

Reads ``shared/reference/mesos/FIELDS.md`` (machine-generated tables of every
message and enum of the Mesos v1 scheduler API) and writes:

* ``proto/proto/mesos/v1/mesos.proto``                 (package ``mesos.v1``)
* ``proto/proto/mesos/v1/scheduler/scheduler.proto``   (package ``mesos.v1.scheduler``)

The reference lives in ``../shared/reference`` relative to the repository root
(this script sits in ``<repo>/proto/``). Pass another FIELDS.md path as the
first argument to override. The generated .proto files are committed, so this
script only needs to run when the reference changes:

    python3 proto/gen_proto.py

Mapping rules (see "How to read the tables" / "Notes for prost" in FIELDS.md):

* headings name types; ``Outer.Inner`` is emitted as a nested type;
* ``oneof X`` labels become members of ``oneof X { ... }``;
* ``map (repeated entry)`` rows become ``map<K, V>`` fields;
* ``default V`` in the notes column becomes ``[default = V]``;
* "deprecated" is kept as a comment only (no ``[deprecated = true]``), so the
  generated Rust has no ``#[deprecated]`` attributes that would trip ``-D warnings``
  in code that still has to set e.g. ``Resource.role``;
* an enum's "Declared first" note moves that value to the front, because the
  first declared value is the proto2 implicit default (``TaskState``);
* type references are written fully qualified (``.mesos.v1.X``) so that nested
  names such as ``Secret.Value`` can never shadow top-level ones.
"""

import os
import re
import sys
from collections import OrderedDict

SCALARS = {
    "double",
    "float",
    "int32",
    "int64",
    "uint32",
    "uint64",
    "sint32",
    "sint64",
    "fixed32",
    "fixed64",
    "sfixed32",
    "sfixed64",
    "bool",
    "string",
    "bytes",
}
INT_TYPES = SCALARS - {"double", "float", "bool", "string", "bytes"}

PKG = {"mesos.v1": "mesos.v1", "mesos.v1.scheduler": "mesos.v1.scheduler"}

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
DEFAULT_FIELDS_MD = os.path.join(
    REPO_ROOT, "..", "shared", "reference", "mesos", "FIELDS.md"
)
OUT_DIR = os.path.join(HERE, "proto", "mesos", "v1")


class Message:
    def __init__(self, full, package, section):
        self.full = full  # e.g. "mesos.v1.Offer.Operation"
        self.package = package
        self.section = section
        self.fields = []  # dicts: num, name, label, type, notes
        self.children = []  # nested Message/Enum in document order
        self.marker = False


class Enum:
    def __init__(self, full, package, section):
        self.full = full
        self.package = package
        self.section = section
        self.values = []  # (name, number, comment)
        self.first = None


def short(full, package):
    return full[len(package) + 1 :]


def qualify(ref):
    """Turn a FIELDS.md type reference into a fully-qualified proto name."""
    if ref in SCALARS:
        return ref
    if ref.startswith("scheduler."):
        return ".mesos.v1.scheduler." + ref[len("scheduler.") :]
    return ".mesos.v1." + ref


def parse(path):
    types = OrderedDict()
    package = None
    section = None
    current = None
    heading_re = re.compile(r"^(#{3,6}) (enum )?`([A-Za-z0-9_.]+)`\s*$")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines:
        if line.startswith("## Package `"):
            package = re.match(r"## Package `([a-z0-9.]+)`", line).group(1)
            section = None
            current = None
            continue
        if package is None:
            continue
        m = heading_re.match(line)
        if m:
            is_enum = m.group(2) is not None
            name = m.group(3)
            if name.startswith("scheduler."):
                assert package == "mesos.v1.scheduler", line
                name = name[len("scheduler.") :]
            full = package + "." + name
            cls = Enum if is_enum else Message
            current = cls(full, package, section)
            section = None
            assert full not in types, "duplicate type " + full
            types[full] = current
            continue
        if line.startswith("### ") and "`" not in line:
            # Grouping heading such as "### Identifiers".
            section = line[4:].strip()
            current = None
            continue
        if current is None:
            continue
        if isinstance(current, Message):
            if line.startswith("(no fields"):
                current.marker = True
            elif line.startswith("|") and not line.startswith("| #") and "---" not in line:
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                assert len(cells) == 5, line
                num, name, label, typ, notes = cells
                current.fields.append(
                    {
                        "num": int(num),
                        "name": name,
                        "label": label,
                        "type": typ,
                        "notes": notes,
                    }
                )
        else:
            if re.match(r"^[A-Za-z0-9_]+ = -?\d+", line):
                for item in line.split(", "):
                    im = re.match(r"^([A-Za-z0-9_]+) = (-?\d+)(?: \((.*)\))?$", item)
                    assert im, item
                    current.values.append((im.group(1), int(im.group(2)), im.group(3)))
            dm = re.match(r"^Declared first .*`([A-Za-z0-9_]+)`", line)
            if dm:
                current.first = dm.group(1)
    return types


def build_tree(types):
    """Attach nested types to their parents; return top-level types per package."""
    tops = OrderedDict((p, []) for p in PKG)
    for full, t in types.items():
        parent = full.rsplit(".", 1)[0]
        if parent in types:
            assert isinstance(types[parent], Message), full
            types[parent].children.append(t)
        else:
            assert parent == t.package, "no parent for " + full
            tops[t.package].append(t)
    return tops


def check_refs(types):
    for t in types.values():
        if not isinstance(t, Message):
            continue
        for f in t.fields:
            for ref in field_refs(f["type"]):
                if ref in SCALARS:
                    continue
                target = qualify(ref)[1:]
                assert target in types, "%s.%s: unknown type %s" % (t.full, f["name"], ref)


def field_refs(typ):
    m = re.match(r"^map<([^,]+), ([^>]+)>$", typ)
    if m:
        return [m.group(1), m.group(2)]
    return [typ]


def split_notes(notes):
    """Return (default, deprecated, comment) from the notes column."""
    default = None
    deprecated = False
    rest = []
    parts = [p.strip() for p in notes.split("; ")] if notes else []
    for i, p in enumerate(parts):
        if i == 0 and p.startswith("default "):
            default = p[len("default ") :]
        elif p == "deprecated":
            deprecated = True
        else:
            rest.append(p)
    return default, deprecated, "; ".join(rest)


def format_default(default, typ, types):
    if typ == "string":
        m = re.match(r"^`(.*)`$", default)
        value = m.group(1) if m else default
        return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')
    if typ == "bool":
        assert default in ("true", "false"), default
        return default
    if typ in ("double", "float"):
        float(default)
        return default
    if typ in INT_TYPES:
        int(default)
        return default
    enum = types.get(qualify(typ)[1:])
    assert isinstance(enum, Enum), "default on non-enum type " + typ
    assert default in [v[0] for v in enum.values], "bad enum default " + default
    return default


def comment_lines(text, indent):
    out = []
    words = text.split()
    line = ""
    for w in words:
        if line and len(indent) + 3 + len(line) + 1 + len(w) > 80:
            out.append("%s// %s" % (indent, line))
            line = w
        else:
            line = (line + " " + w) if line else w
    if line:
        out.append("%s// %s" % (indent, line))
    return out


def emit_enum(e, depth, out):
    ind = "  " * depth
    out.append("%senum %s {" % (ind, e.full.rsplit(".", 1)[1]))
    values = list(e.values)
    if e.first is not None:
        first = [v for v in values if v[0] == e.first]
        assert len(first) == 1, e.full
        values = first + [v for v in values if v[0] != e.first]
        out.extend(
            comment_lines(
                "%s is declared first: it is the proto2 default of fields of this type."
                % e.first,
                ind + "  ",
            )
        )
    for name, num, note in values:
        suffix = "  // %s" % note.capitalize() if note else ""
        out.append("%s  %s = %d;%s" % (ind, name, num, suffix))
    out.append("%s}" % ind)


def emit_field(f, types, ind, out, in_oneof):
    default, deprecated, comment = split_notes(f["notes"])
    text = []
    if deprecated:
        text.append("Deprecated.")
    if comment:
        text.append(comment)
    if text:
        out.extend(comment_lines(" ".join(text), ind))
    typ = f["type"]
    label = f["label"]
    m = re.match(r"^map<([^,]+), ([^>]+)>$", typ)
    if label.startswith("map"):
        assert m, typ
        decl = "map<%s, %s>" % (qualify(m.group(1)), qualify(m.group(2)))
    else:
        assert not m, typ
        decl = qualify(typ)
        if not in_oneof:
            assert label in ("required", "optional", "repeated"), label
            decl = label + " " + decl
    opts = ""
    if default is not None:
        assert label in ("optional", "required"), f
        opts = " [default = %s]" % format_default(default, typ, types)
    out.append("%s%s %s = %d%s;" % (ind, decl, f["name"], f["num"], opts))


def emit_message(msg, types, depth, out):
    ind = "  " * depth
    name = msg.full.rsplit(".", 1)[1]
    if msg.marker and not msg.children:
        out.append("%s// Empty marker message: meaningful when present." % ind)
    out.append("%smessage %s {" % (ind, name))
    body = []
    for child in msg.children:
        if isinstance(child, Enum):
            emit_enum(child, depth + 1, body)
        else:
            emit_message(child, types, depth + 1, body)
        body.append("")
    emitted_oneofs = set()
    fields = msg.fields
    for f in fields:
        om = re.match(r"^oneof `([A-Za-z0-9_]+)`$", f["label"])
        if om:
            oneof = om.group(1)
            if oneof in emitted_oneofs:
                continue
            emitted_oneofs.add(oneof)
            body.append("%s  oneof %s {" % (ind, oneof))
            for g in fields:
                if g["label"] == f["label"]:
                    emit_field(g, types, ind + "    ", body, True)
            body.append("%s  }" % ind)
        else:
            emit_field(f, types, ind + "  ", body, False)
    while body and body[-1] == "":
        body.pop()
    if not body:
        out[-1] += "}"
        return
    out.extend(body)
    out.append("%s}" % ind)


HEADER = """\
// GENERATED by proto/gen_proto.py from shared/reference/mesos/FIELDS.md
// (itself a parse of apache/mesos include/mesos/v1/{mesos,scheduler/scheduler}.proto).
// Do not edit by hand: edit or re-run the generator instead.
//
// Scope: every message and enum reachable from mesos.v1.scheduler.Call and
// mesos.v1.scheduler.Event, with Mesos's field names, numbers, labels, types,
// enum values and proto2 defaults.

syntax = "proto2";

package %s;
"""


def render(package, tops, types):
    out = [HEADER % package]
    if package == "mesos.v1.scheduler":
        out.append('import "mesos/v1/mesos.proto";')
        out.append("")
    last_section = None
    for t in tops:
        if t.section and t.section != last_section:
            out.append("// " + "=" * 74)
            out.append("// " + t.section)
            out.append("// " + "=" * 74)
            out.append("")
            last_section = t.section
        if isinstance(t, Enum):
            emit_enum(t, 0, out)
        else:
            emit_message(t, types, 0, out)
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_FIELDS_MD
    types = parse(src)
    tops = build_tree(types)
    check_refs(types)
    targets = {
        "mesos.v1": os.path.join(OUT_DIR, "mesos.proto"),
        "mesos.v1.scheduler": os.path.join(OUT_DIR, "scheduler", "scheduler.proto"),
    }
    for package, path in targets.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(render(package, tops[package], types))
        print("wrote %s" % os.path.relpath(path, REPO_ROOT))
    n_msg = sum(isinstance(t, Message) for t in types.values())
    n_enum = len(types) - n_msg
    print("%d messages, %d enums" % (n_msg, n_enum))


if __name__ == "__main__":
    main()
