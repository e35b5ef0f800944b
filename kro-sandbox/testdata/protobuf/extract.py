#!/usr/bin/env python3
"""Regenerates `schema.json`: the protobuf wire schema of the built-in kinds the sandbox
decodes and encodes (`src/http/protobuf/`).

Usage: extract.py API_DIR APIMACHINERY_DIR > schema.json

API_DIR and APIMACHINERY_DIR are checkouts of k8s.io/api and k8s.io/apimachinery at the
served release (v0.32.x for Kubernetes 1.32). Two sources are read, each for what only it
says:

- `generated.proto`: message names, field numbers, field names (the JSON names) and types.
- the Go types (`*.go` next to it): which scalar fields are non-pointer `omitempty`. Such a
  field is always on the wire (zero included) yet absent from the JSON of the same object,
  so the decoder drops its zero value; a pointer field's zero (`replicas: 0`) is kept.

Output: {"messages": {FULL_NAME: {"fields": [[number, name, type, flags], ...],
"list": true?}}}. `type` is a scalar name, a full message name, or "map<K,V>"; flags are
"r" (repeated) and "z" (zero means absent). "list" marks a message wrapping a named Go
slice (`ExtraValue`), whose JSON is the bare array.
"""
import json
import pathlib
import re
import sys

API_PACKAGES = ["core/v1", "apps/v1", "batch/v1", "networking/v1", "rbac/v1",
                "coordination/v1", "events/v1", "policy/v1", "storage/v1", "autoscaling/v1",
                "autoscaling/v2", "authentication/v1", "authorization/v1", "scheduling/v1",
                "discovery/v1"]
MACHINERY_PACKAGES = ["pkg/apis/meta/v1", "pkg/runtime", "pkg/util/intstr", "pkg/api/resource",
                      "pkg/runtime/schema"]
SCALARS = {"string", "int32", "int64", "bool", "bytes", "double", "float", "uint32", "uint64",
           "sint32", "sint64", "fixed32", "fixed64"}

FIELD = re.compile(r"^\s*(optional|repeated)\s+(\S+)\s+(\w+)\s*=\s*(\d+)\s*;")
MAP_FIELD = re.compile(r"^\s*map<\s*(\S+)\s*,\s*(\S+)\s*>\s+(\w+)\s*=\s*(\d+)\s*;")
GO_STRUCT = re.compile(r"^type\s+(\w+)\s+struct\s*\{")
GO_SLICE = re.compile(r"^type\s+(\w+)\s+\[\]")
GO_FIELD = re.compile(r"^\s*(?:\w+\s+)?(\*?)[\w.\[\]*]+\s+`[^`]*json:\"(\w*)([^\"]*)\"[^`]*protobuf:\"[^\"]*name=(\w+)")


def resolve(t, package):
    if t in SCALARS:
        return t
    if t.startswith("."):
        return t[1:]
    return f"{package}.{t}"


def read_proto(path, messages):
    package = None
    current = None
    for line in path.read_text().splitlines():
        line = line.split("//", 1)[0]
        m = re.match(r"^package\s+([\w.]+);", line)
        if m:
            package = m.group(1)
            continue
        m = re.match(r"^message\s+(\w+)\s*\{", line)
        if m:
            current = {"fields": []}
            messages[f"{package}.{m.group(1)}"] = current
            continue
        m = FIELD.match(line)
        if m and current is not None:
            label, t, name, num = m.groups()
            flags = "r" if label == "repeated" else ""
            current["fields"].append([int(num), name, resolve(t, package), flags])
            continue
        m = MAP_FIELD.match(line)
        if m and current is not None:
            k, v, name, num = m.groups()
            current["fields"].append([int(num), name, f"map<{resolve(k, package)},{resolve(v, package)}>", ""])
    return package


def read_go(directory):
    """(struct, proto field name) -> (pointer, omitempty); and the named slice types."""
    fields, slices = {}, set()
    for path in sorted(directory.glob("*.go")):
        if path.name.endswith("_test.go") or path.name.startswith("generated") or path.name.startswith("zz_"):
            continue
        struct = None
        for line in path.read_text().splitlines():
            m = GO_STRUCT.match(line)
            if m:
                struct = m.group(1)
                continue
            m = GO_SLICE.match(line)
            if m:
                slices.add(m.group(1))
                continue
            if line.startswith("}"):
                struct = None
                continue
            m = GO_FIELD.match(line)
            if m and struct:
                pointer, _json, opts, proto_name = m.groups()
                fields[(struct, proto_name)] = (pointer == "*", "omitempty" in opts)
    return fields, slices


def main():
    api, machinery = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    messages = {}
    dirs = [api / p for p in API_PACKAGES] + [machinery / p for p in MACHINERY_PACKAGES]
    for d in dirs:
        package = read_proto(d / "generated.proto", messages)
        go_fields, slices = read_go(d)
        for full, msg in messages.items():
            if not full.startswith(package + ".") or "." in full[len(package) + 1:]:
                continue
            name = full[len(package) + 1:]
            if name in slices and [f[1] for f in msg["fields"]] == ["items"]:
                msg["list"] = True
            for f in msg["fields"]:
                pointer, omitempty = go_fields.get((name, f[1]), (True, True))
                if f[2] in SCALARS and not f[3] and not pointer and omitempty:
                    f[3] += "z"
    for msg in messages.values():
        msg["fields"].sort()
    out = sys.stdout
    out.write('{"messages": {\n')
    items = sorted(messages.items())
    for i, (name, msg) in enumerate(items):
        out.write(json.dumps(name) + ": " + json.dumps(msg, separators=(",", ":")))
        out.write(",\n" if i + 1 < len(items) else "\n")
    out.write("}}\n")


if __name__ == "__main__":
    main()
